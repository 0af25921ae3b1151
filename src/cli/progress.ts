import cliProgress from 'cli-progress';
import type { LoadProgress } from '../pipeline/loader.js';

/** A progress bar on stderr with rows/s and ETA; used only when stderr is a TTY. */
export class ProgressDisplay {
  private bar: cliProgress.SingleBar | undefined;
  private readonly started = Date.now();

  update(p: LoadProgress): void {
    const seconds = Math.max(0.001, (Date.now() - this.started) / 1000);
    const rate = Math.round(p.rows / seconds).toLocaleString('en-US');
    if (!this.bar) {
      const known = p.totalBytes !== undefined;
      this.bar = new cliProgress.SingleBar({
        stream: process.stderr,
        format: known
          ? 'loading [{bar}] {percentage}% | {rows} rows | {rate} rows/s | ETA {eta_formatted}'
          : 'loading {rows} rows | {rate} rows/s',
        hideCursor: true,
        clearOnComplete: true,
      }, cliProgress.Presets.shades_classic);
      this.bar.start(p.totalBytes ?? 1, 0, { rows: 0, rate: '0' });
    }
    this.bar.update(p.totalBytes !== undefined ? p.bytesRead : 0, { rows: p.rows.toLocaleString('en-US'), rate });
  }

  clear(): void {
    this.bar?.stop();
    this.bar = undefined;
  }

  stop(): void {
    this.clear();
  }
}
