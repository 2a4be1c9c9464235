/**
 * A GET route outside a listener's own protocol (`/healthz`, `/readyz`, `/metrics`) that another
 * module adds to the endpoint's or the console's listener: a path and what answers it. The listener
 * serves it as given, before its own routes and without its own admission; the route decides who
 * may read it.
 */
export interface PlainRoute {
  readonly path: string;
  handle(request: Request): Response | Promise<Response>;
}
