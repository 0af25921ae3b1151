/**
 * Every threshold the feedback loop decides by, in one place: the monitor's hotspots and actions,
 * the advice (advice.ts), worker tuning (worker-settings.ts), the rebalancer's parameters and the
 * report's warnings all read them from here, so "hot" means the same thing everywhere.
 */

/**
 * A node is hot when its predicted share of the load passes its fair share (by capacity) by this
 * factor. Below it, differences are within what one window's noise and the rebalancer's own
 * threshold leave; above it a DBA is told (hotspot, scale-up advice, report warning) and tune
 * treats the node as one to keep CPU for tenant queries.
 */
export const HOT_FACTOR = 1.25;

/**
 * Default of `monitor --rebalance --threshold`: predicted busiest/mean node load at which the
 * monitor asks the rebalancer to act. Lower than HOT_FACTOR on purpose: moving shards is the
 * tool's own remedy and it applies it before the imbalance is worth a DBA's attention.
 */
export const DEFAULT_REBALANCE_THRESHOLD = 1.1;

/** Default daemon schedule (node-cron): a window every five minutes. */
export const DEFAULT_SCHEDULE = '*/5 * * * *';

/**
 * A shard is a hotspot when it is predicted to take more than this fraction of the smallest fair
 * node share: beyond it, no node can hold it beside much else.
 */
export const SHARD_HOTSPOT_FRACTION = 0.5;

/**
 * Isolating a tenant helps only if it draws at least this share of its shard's queries; else the
 * shard stays hot after the split.
 */
export const TENANT_ISOLATION_MIN_SHARE = 0.5;

/** Largest node capacity advice suggests recording (beyond it, scale up or add a node instead). */
export const MAX_SUGGESTED_CAPACITY = 4;

/** Live-metric thresholds a DBA would call busy; conservative so that advice is rare and worth reading. */
export const CPU_BUSY = 0.85;
export const DISK_BUSY = 0.8;
export const CONNECTIONS_USED = 0.8;
export const CACHE_HIT_LOW = 0.9;
/** Tuples read per second below which a low cache hit ratio is noise, not a working set that does not fit. */
export const CACHE_ADVICE_MIN_TUPLES_PER_SECOND = 1000;
/** Statement time per core above which every node counts as busy for add-a-node advice. */
export const CORE_UTILIZATION = 0.7;
/** Statement time per core that add-a-node advice sizes the cluster for. */
export const TARGET_UTILIZATION = 0.6;

/**
 * Citus rebalancer parameters for the adaptive_load strategy: a node may differ from the
 * average by this fraction of its capacity before shards move (the strategy's default and what
 * plans use), the least threshold a caller may ask for, and the least improvement a move must bring.
 */
export const REBALANCER_THRESHOLD = 0.1;
export const REBALANCER_MINIMUM_THRESHOLD = 0.01;
export const REBALANCER_IMPROVEMENT_THRESHOLD = 0.5;

/**
 * Acting only on signal. A window whose shard statements add up to less than this much execution
 * time (twice the 24 ms of stray statements seen to move shards in issue 15) or fewer calls is noise (the monitor's own reads, a DBA's psql session): nothing is
 * learned from it (no training, no load factors, no smoothing) and nothing moves because of it.
 */
export const MIN_WINDOW_LOAD_MS = 50;
export const MIN_WINDOW_CALLS = 200;

/**
 * Weight of the newest window in the exponentially weighted average of each shard's actual share
 * (the model's smoothed feature): 0.5 halves an old window's say every window, so a one-window
 * burst moves the smoothed share half way and a steady change is followed within a few windows.
 */
export const SHARE_SMOOTHING = 0.5;

/**
 * Error scoring: an actual share below this (of all load) is too small for a relative error to mean
 * anything (a 0.1% shard predicted at 4% is a 3,900% MAPE for 4 points of share). MAPE leaves such
 * shards and nodes out; WAPE and the largest share error score everything.
 */
export const MAPE_MIN_ACTUAL_SHARE = 0.01;

/**
 * A planned move is made only when what it gains beats what it costs, with a margin (like Citus's
 * improvement_threshold, but in the same unit on both sides):
 * - gain: the load above the nodes' fair shares it removes, in ms of execution per window (predicted
 *   share x the mean shard load of recent windows), over MOVE_PAYBACK_WINDOWS windows;
 * - cost: the bytes of the shard group to copy, at MOVE_COPY_BYTES_PER_MS (a conservative logical
 *   replication rate), in ms.
 * and only when it removes at least MIN_MOVE_GAIN_SHARE of all load (no churn for crumbs).
 */
export const MOVE_PAYBACK_WINDOWS = 12;
export const MOVE_COPY_BYTES_PER_MS = 20_000;
export const MOVE_COST_MARGIN = 2;
export const MIN_MOVE_GAIN_SHARE = 0.01;

// --- History retention and the bounded cycle read (store/retention.ts, store/history-store.ts) ---

/**
 * Default retention horizon of the monitor's history (windows and what hangs off them: shard
 * load, prediction history, node metrics, advice; model states): a month of windows, long enough
 * for a DBA's "what happened last week" and far more than the model trains on.
 */
export const DEFAULT_RETAIN_DAYS = 30;
/** Rows one pruning statement deletes: short locks, small WAL bursts. */
export const RETENTION_BATCH_ROWS = 10_000;
/** Pruning statements per cycle: bounds a cycle's pruning work; the rest goes next cycle. */
export const RETENTION_MAX_BATCHES = 50;
/**
 * Active windows the model refits on each cycle: enough pairs of consecutive windows to fit three
 * weights steadily, few enough that a cycle's read stays the same size as history grows.
 */
export const HISTORY_WINDOWS = 48;
/**
 * Finding a hot shard's tenants without Citus's tenant statistics: a TABLESAMPLE SYSTEM of the
 * shard on its worker reads about this many rows, and gives up after this many milliseconds (a
 * busy worker must not stall the monitor).
 */
export const SHARD_SAMPLE_ROWS = 20000;
export const SHARD_SAMPLE_TIMEOUT_MS = 5000;
/** Tenants the sample or the statistics report per shard (enough for a load-weighted split point). */
export const SHARD_TENANTS_LISTED = 200;
