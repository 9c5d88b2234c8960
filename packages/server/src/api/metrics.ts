import { Counter, Histogram, type Registry } from "prom-client";
import { API_METHODS } from "./schemas.js";

/**
 * The server API's series, on the server's registry: `ws_channels_api_requests_total{method,
 * status}` and `ws_channels_api_request_duration_seconds{method}`. Each method's series exist
 * from the start (status 200), so that rate() sees the first request; a request to no route
 * counts as method `unknown`.
 * @returns what counts one request: its method, status, and time to answer in seconds.
 */
export function apiMetrics(registers: Registry[]): (method: string, status: number, seconds: number) => void {
  const requests = new Counter({
    name: "ws_channels_api_requests_total",
    help: "Server API requests, per method and status",
    labelNames: ["method", "status"],
    registers,
  });
  const seconds = new Histogram({
    name: "ws_channels_api_request_duration_seconds",
    help: "Server API answer times, per method",
    labelNames: ["method"],
    buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2],
    registers,
  });
  for (const method of API_METHODS) {
    requests.inc({ method, status: 200 }, 0);
    seconds.zero({ method });
  }
  return (method, status, time) => {
    requests.inc({ method, status });
    seconds.observe({ method }, time);
  };
}
