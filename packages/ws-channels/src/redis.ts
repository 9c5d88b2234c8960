export { RedisBroker, type RedisBrokerOptions } from "./brokers/redis.js";
export { type ConnectionOptions, REDIS_DEFAULTS, RedisConnections, type RedisConnectionsOptions } from "./brokers/redis-connections.js";
