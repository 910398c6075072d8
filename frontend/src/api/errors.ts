/** A failed backend call. `status` is the HTTP status (0 when the backend was unreachable or for Wails). */
export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor(
    message: string,
    readonly method: string,
    readonly status: number = 0,
  ) {
    super(message)
  }

  /** The backend refused our access token (`porthole serve` restarted, or a wrong URL). */
  get unauthorized(): boolean {
    return this.status === 401 || this.status === 403
  }
}

export function isUnauthorized(err: unknown): boolean {
  return err instanceof ApiError && err.unauthorized
}
