import { type ExitCode, PhasebenchError } from '../errors.ts';

export type HttpAdminErrorCode =
  /** serve / http-load: the environment variable holding the bearer token is unset or empty. */
  | 'TOKEN_MISSING'
  /** http-load: the server answered 401 to the token. */
  | 'TOKEN_REJECTED'
  /** http-load: --url is not an http(s) URL. */
  | 'URL_INVALID'
  /** http-load: the target is not a loopback address and --allow-remote was not given. */
  | 'HOST_NOT_LOOPBACK'
  /** http-load: a flag is out of its bounds (connections, duration, amount). */
  | 'LOAD_OUT_OF_BOUNDS'
  /** http-load: the server could not be reached before the run. */
  | 'SERVER_UNREACHABLE'
  /** http-load: the run finished without a single accepted request. */
  | 'LOAD_NOTHING_ACCEPTED'
  /** serve: the address is in use or cannot be bound. */
  | 'LISTEN_FAILED';

/** Input mistakes exit 2; the rest exit 1. */
const INPUT_ERRORS = new Set<HttpAdminErrorCode>([
  'TOKEN_MISSING',
  'TOKEN_REJECTED',
  'URL_INVALID',
  'HOST_NOT_LOOPBACK',
  'LOAD_OUT_OF_BOUNDS',
]);

/** A failure of the admin API's commands (serve, http-load), as the CLI reports it. */
export class HttpAdminError extends PhasebenchError {
  override name = 'HttpAdminError';
  declare readonly code: HttpAdminErrorCode;

  constructor(
    code: HttpAdminErrorCode,
    message: string,
    options: { retriable?: boolean; cause?: unknown } = {},
  ) {
    const exitCode: ExitCode = INPUT_ERRORS.has(code) ? 2 : 1;
    super(code, message, { exitCode, retriable: options.retriable ?? false, cause: options.cause });
  }
}
