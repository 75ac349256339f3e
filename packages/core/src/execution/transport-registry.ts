/**
 * Which Transport implements which transport name. Transports are created lazily (the CLI only
 * loads the SSH or SSM package when a node needs it) and checked once: a transport whose
 * `specificationVersion` is not the one this core implements is refused, never half-used.
 */
import { RuneError } from '@rune/protocol';
import { TRANSPORT_SPECIFICATION_VERSION, type Transport } from '@rune/transport';

/** A transport, or a function creating it on first use. */
export type TransportProvider = Transport | (() => Transport | Promise<Transport>);

/** Resolves transport names to checked transports. */
export interface TransportRegistry {
  /** The transport registered as `name`. Throws TRANSPORT_UNAVAILABLE. */
  get(name: string): Promise<Transport>;
  /** Registers (or replaces) a provider. */
  register(name: string, provider: TransportProvider): void;
  /** Names with a provider. */
  names(): string[];
  /** Closes every transport created so far. */
  close(): Promise<void>;
}

/** Throws TRANSPORT_UNAVAILABLE unless `transport` implements this core's Transport specification. */
export function assertCompatibleTransport(transport: unknown, name: string): Transport {
  const candidate = transport as Partial<Transport> | null;
  if (
    candidate === null ||
    typeof candidate !== 'object' ||
    typeof candidate.exec !== 'function' ||
    typeof candidate.close !== 'function'
  ) {
    throw new RuneError('TRANSPORT_UNAVAILABLE', `transport "${name}" is not a Transport`, {
      source: { component: 'rune-core' },
      details: { transport: name },
    });
  }
  if (candidate.specificationVersion !== TRANSPORT_SPECIFICATION_VERSION) {
    throw new RuneError(
      'TRANSPORT_UNAVAILABLE',
      `transport "${name}" implements ${String(candidate.specificationVersion)}; this core implements ${TRANSPORT_SPECIFICATION_VERSION}`,
      {
        source: { component: 'rune-core' },
        details: {
          transport: name,
          specification_version: String(candidate.specificationVersion),
          expected: TRANSPORT_SPECIFICATION_VERSION,
        },
      },
    );
  }
  return candidate as Transport;
}

/** Creates a registry from `name → transport or factory`. */
export function createTransportRegistry(
  providers: Readonly<Record<string, TransportProvider>> = {},
): TransportRegistry {
  const registered = new Map<string, TransportProvider>(Object.entries(providers));
  const created = new Map<string, Promise<Transport>>();

  return {
    register(name, provider) {
      registered.set(name, provider);
      created.delete(name);
    },
    names: () => [...registered.keys()].sort(),
    get(name) {
      let transport = created.get(name);
      if (transport === undefined) {
        const provider = registered.get(name);
        if (provider === undefined) {
          return Promise.reject(
            new RuneError(
              'TRANSPORT_UNAVAILABLE',
              `no transport named "${name}" is available (known: ${[...registered.keys()].sort().join(', ') || 'none'})`,
              { source: { component: 'rune-core' }, details: { transport: name } },
            ),
          );
        }
        transport = (async () => {
          try {
            const instance = typeof provider === 'function' ? await provider() : provider;
            return assertCompatibleTransport(instance, name);
          } catch (error) {
            throw RuneError.from(error, 'TRANSPORT_UNAVAILABLE');
          }
        })();
        created.set(name, transport);
        // A failed creation is not cached: the next call tries again.
        transport.catch(() => created.delete(name));
      }
      return transport;
    },
    async close() {
      const all = [...created.values()];
      created.clear();
      await Promise.allSettled(all.map(async (transport) => (await transport).close()));
    },
  };
}
