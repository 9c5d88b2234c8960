export { type ConnectionOptions, RedisBroker, type RedisBrokerOptions } from "./brokers/redis.js";
