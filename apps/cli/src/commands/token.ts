/**
 * `rune token create|list|revoke`: the API tokens of `rune serve`, in its run store (`[server]
 * store`). A created token is printed once, on stdout; the store keeps only its hash.
 */
import { serverSection } from '@rune/server/config';
import type { CliIo } from '../cli-io.js';
import { formatJson } from '../render/json.js';
import { terminalSafe } from '../render/terminal-text.js';
import { type CommonArgs, guarded, loadCliConfig } from './command-context.js';

/** The flags of the token commands. */
export interface TokenArgs extends CommonArgs {
  name?: string;
  role?: string;
  expires?: string;
}

async function withStore<T>(
  io: CliIo,
  args: TokenArgs,
  body: (
    server: typeof import('@rune/server'),
    store: import('@rune/server').RunStore,
  ) => Promise<T>,
): Promise<T> {
  const loaded = loadCliConfig(io, args);
  const server = await import('@rune/server');
  const settings = server.resolveServerSettings(loaded);
  const store = await server.openRunStore(settings.storePath);
  try {
    return await body(server, store);
  } finally {
    await store.close();
  }
}

/** `rune token create --name N --role R --expires 90d`. */
export function tokenCreateCommand(args: TokenArgs, io: CliIo): Promise<number> {
  return guarded(io, args, () =>
    withStore(io, args, async (server, store) => {
      // With [server] policy, a token carries that policy's roles (checked to exist here).
      const policyPath = serverSection(loadCliConfig(io, args)).policy;
      const created = await server.createToken(store, {
        name: String(args.name ?? ''),
        role: String(args.role ?? 'viewer'),
        expires: String(args.expires ?? '90d'),
        ...(policyPath === undefined
          ? {}
          : { knownRoles: [...server.loadServerPolicy(policyPath).roles.keys()] }),
      });
      if (args.output === 'json' || args.output === 'jsonl') {
        io.out(args.output === 'json' ? formatJson(created) : `${JSON.stringify(created)}\n`);
      } else {
        io.out(`${created.token}\n`);
        io.err(
          `token ${terminalSafe(created.name)} (${created.role}) created; expires ${created.expires_at ?? 'never'}. It is shown only now: store it in a secret manager. Use it as "Authorization: Bearer <token>".\n`,
        );
      }
      return 0;
    }),
  );
}

/** `rune token list`. */
export function tokenListCommand(args: TokenArgs, io: CliIo): Promise<number> {
  return guarded(io, args, () =>
    withStore(io, args, async (server, store) => {
      const tokens = await server.listTokens(store);
      if (args.output === 'json' || args.output === 'jsonl') {
        io.out(
          args.output === 'json'
            ? formatJson({ tokens })
            : tokens.map((token) => `${JSON.stringify(token)}\n`).join(''),
        );
        return 0;
      }
      const rows = [
        ['NAME', 'ROLE', 'STATE', 'CREATED', 'EXPIRES', 'LAST USED'],
        ...tokens.map((token) => [
          token.name,
          token.role,
          token.state,
          token.created_at.slice(0, 19),
          token.expires_at?.slice(0, 19) ?? 'never',
          token.last_used_at?.slice(0, 19) ?? '-',
        ]),
      ];
      const widths =
        rows[0]?.map((_, column) => Math.max(...rows.map((row) => row[column]?.length ?? 0))) ?? [];
      io.out(
        rows
          .map(
            (row) =>
              `${row
                .map((cell, column) => terminalSafe(cell).padEnd(widths[column] ?? 0))
                .join('  ')
                .trimEnd()}\n`,
          )
          .join(''),
      );
      return 0;
    }),
  );
}

/** `rune token revoke NAME`. */
export function tokenRevokeCommand(args: TokenArgs, io: CliIo): Promise<number> {
  return guarded(io, args, () =>
    withStore(io, args, async (server, store) => {
      await server.revokeToken(store, String(args.name ?? ''));
      io.err(`token ${terminalSafe(String(args.name))} revoked: it is refused from now on\n`);
      return 0;
    }),
  );
}
