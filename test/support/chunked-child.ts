/**
 * Runs test/support/chunked-load-and-die.ts in a child process for the resume suites, bounded:
 * a hung child is killed after `boundMs` and reported as hung.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The child's arguments (chunked-load-and-die.ts says what each does). */
export interface ChildArgs {
  coordinator: string;
  table: string;
  file?: string;
  fromTable?: string;
  then?: 'keep' | 'truncate' | 'drop';
  commitEvery: string;
  resume?: boolean | number;
  restart?: boolean;
  maxErrors?: number;
  rejectsFile?: string;
  diePhase?: 'prepared' | 'commit-recorded';
  dieAt?: number;
  stallPhase?: 'prepared' | 'commit-recorded';
  stallAt?: number;
  stallUntil?: string;
}

export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** The summary it printed as its last line, when it lived to the end. */
  summary: Record<string, unknown> | undefined;
  hung: boolean;
}

export interface ChildControl {
  /** SIGKILL the child that long after it says its job is locked (a random moment of the load). */
  killAfterLockedMs?: number;
  /** Called once the child says it stalled (ChildArgs.stallPhase). */
  onStalled?: () => void;
  boundMs?: number;
}

export function runChild(args: ChildArgs, control: ChildControl = {}): Promise<ChildResult> {
  const script = fileURLToPath(new URL('./chunked-load-and-die.js', import.meta.url));
  const { killAfterLockedMs, onStalled, boundMs = 180_000 } = control;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let hung = false;
    const timers: NodeJS.Timeout[] = [setTimeout(() => { hung = true; child.kill('SIGKILL'); }, boundMs)];
    child.stdout.on('data', (d: Buffer) => {
      const before = stdout;
      stdout += d.toString();
      if (onStalled && !before.includes('stalled\n') && stdout.includes('stalled\n')) onStalled();
      if (killAfterLockedMs !== undefined && !before.includes('locked\n') && stdout.includes('locked\n')) {
        timers.push(setTimeout(() => child.kill('SIGKILL'), killAfterLockedMs));
      }
    });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', (status, signal) => {
      for (const t of timers) clearTimeout(t);
      let summary: Record<string, unknown> | undefined;
      try {
        summary = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
      } catch {
        summary = undefined;
      }
      resolve({ status, signal, stdout, stderr, summary, hung });
    });
  });
}
