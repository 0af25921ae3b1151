import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The built CLI, as users run it. */
export const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  json: Record<string, unknown> | undefined;
}

export function runCli(args: string[], options: { env?: Record<string, string>; input?: Buffer; onSpawn?: (pid: number) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    if (child.pid) options.onSpawn?.(child.pid);
    child.stdin.end(options.input);
    child.on('close', (status, signal) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      resolve({ status, signal, stdout, stderr, json });
    });
  });
}
