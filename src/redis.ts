export { RedisBroker, type RedisBrokerOptions } from "./brokers/redis.js";
export { type ConnectionOptions, RedisConnections, type RedisConnectionsOptions } from "./brokers/redis-connections.js";
