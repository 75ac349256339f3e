import { RuneError } from '@rune/protocol';

/**
 * Runs `fn` and returns the `RuneError` it throws, so a test can assert its EPS code and details.
 * Anything else thrown is rethrown; returning normally is an error ("expected a RuneError").
 */
export function catchRuneError(fn: () => unknown): RuneError {
  try {
    fn();
  } catch (error) {
    if (RuneError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a RuneError');
}
