export { History } from "./history.js";
export type {
  HistoryEntry,
  HistoryOptions,
  HistoryPolicies,
  HistoryPolicy,
  HistoryPosition,
  HistoryRecovery,
  HistoryStats,
} from "./types.js";
