/**
 * A fault-injecting TCP proxy for tests: it sits on 127.0.0.1 between the loader and one
 * PostgreSQL node and cuts or stalls a connection at a chosen wire-protocol message.
 *
 *   const proxy = await FaultProxy.start({ targetHost: '127.0.0.1', targetPort: node.port });
 *   proxy.addRule({ direction: 'frontend', match: matchQuery(/^COMMIT/), action: 'drop-reply' });
 *   // point the client at 127.0.0.1:proxy.port (the loader: --node-map 127.0.0.1:PORT=127.0.0.1:PROXYPORT,
 *   // so Citus keeps its own host:port for the node and never needs to know about the proxy)
 *   ...; assert.equal(proxy.events[0]?.type, 'Q'); await proxy.close();
 *
 * Framing (PostgreSQL protocol 3.0), parsed separately in each direction of every connection:
 * - Frontend, until the startup packet: untyped packets, int32 length (counting itself) + int32
 *   code. The code names the message: 80877103 'SSLRequest', 80877104 'GSSENCRequest', 80877102
 *   'CancelRequest', anything else (the protocol version) 'startup'. SSL/GSSENC requests are
 *   forwarded; the server answers with one untyped byte, reported as 'SSLResponse' or
 *   'GSSENCResponse'. 'N' means "no" and the client sends another untyped packet; 'S' or 'G'
 *   means encryption follows, so both directions are then forwarded without parsing.
 * - After 'startup', and always from the backend: 1 type byte + int32 length (counting itself,
 *   not the type byte) + payload. Messages may span TCP chunks and chunks may hold many messages;
 *   the proxy forwards whole messages only, so it can stop exactly at a message boundary.
 * A length that cannot be valid switches that connection to plain byte forwarding (never throws).
 *
 * Rules (`addRule`) are checked, in the order added, against every message in their direction on
 * connections accepted after the rule was added (or on all, with `existing: true`). A rule fires
 * on its `after`-th match (default 1, counted over all connections), and only once unless
 * `once: false`, in which case it fires on every match from then on. The first rule that fires
 * decides the message; every action ends normal forwarding on that connection for good.
 * - 'cut': both sockets go. Everything before the message is delivered first (the destination
 *   socket is ended, not destroyed, so bytes already written are not lost); the message itself
 *   too when `when` is 'after'. The other side is destroyed at once.
 * - 'stall': the message (with `when: 'after'`) and everything before it is delivered, then both
 *   sockets are paused and kept open: nothing more passes either way, like a hung node.
 * - 'drop-reply' (frontend): the message and whatever the client already sent behind it (e.g. the
 *   Bind/Execute/Sync behind a Parse) go to the server, the client socket is destroyed at once,
 *   and the server connection is ended gracefully: the server reads and executes the message,
 *   its replies are discarded. `connectionClosed(i)` resolves once the server closed its side,
 *   i.e. once it has finished executing (a COMMIT is then visible).
 * `when` defaults to 'after' for frontend rules (the server receives the message) and 'before'
 * for backend rules (the client never sees the message).
 */
import net from 'node:net';

export type Direction = 'frontend' | 'backend';
export type FaultAction = 'cut' | 'stall' | 'drop-reply';

export interface ProtocolMessage {
  /** The type byte as a character ('Q', 'P', 'd', 'Z', ...), or the name of an untyped packet. */
  type: string;
  /** The length field of the message (for untyped one-byte responses: 1). */
  length: number;
  /** The bytes after the length field (for startup-phase packets: after the length, i.e. with the code). */
  payload: Buffer;
  connectionIndex: number;
  direction: Direction;
  /** For 'Q' (simple query) and 'P' (parse): the SQL text, decoded as UTF-8. */
  text?: string;
}

export interface FaultRule {
  direction: Direction;
  match: (msg: ProtocolMessage) => boolean;
  action: FaultAction;
  /** Fire on the nth match (counted over all connections the rule applies to). Default 1. */
  after?: number;
  /** Fire only once. Default true; false fires on the nth match and every match after it. */
  once?: boolean;
  /** Act before or after forwarding the matching message. Default 'after' (frontend) / 'before' (backend). */
  when?: 'before' | 'after';
  /** Also apply to connections already open when the rule is added. Default false. */
  existing?: boolean;
}

export interface FaultRuleHandle {
  readonly id: number;
  /** How many times the rule has fired. */
  readonly fired: number;
  remove(): void;
}

export interface FaultEvent {
  /** Milliseconds since the proxy started. */
  at: number;
  connectionIndex: number;
  /** The rule that fired, or undefined for the accept-time faults. */
  ruleId: number | undefined;
  action: FaultAction | 'refuse' | 'stall-accept';
  direction: Direction;
  /** The message type (see ProtocolMessage.type), or 'accept' for the accept-time faults. */
  type: string;
  text?: string;
}

export interface FaultProxyOptions {
  targetHost: string;
  targetPort: number;
  /** Port to listen on; default 0 (a free port). */
  port?: number;
}

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
/** Anything larger is not a startup packet (PostgreSQL itself refuses startup packets over 10000 bytes). */
const MAX_STARTUP_LENGTH = 10_000;
/** How long an ended socket may take to close by itself before it is destroyed. */
const GRACE_MS = 10_000;

/** Received bytes, kept as a list of chunks so a large message arriving in many chunks is copied once. */
class ByteQueue {
  private chunks: Buffer[] = [];
  size = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.size += chunk.length;
  }

  /** The first n bytes (n <= size) as one buffer, without removing them. */
  peek(n: number): Buffer {
    let first = this.chunks[0]!;
    if (first.length < n) {
      first = Buffer.concat(this.chunks);
      this.chunks = [first];
    }
    return first.subarray(0, n);
  }

  take(n: number): Buffer {
    const bytes = this.peek(n);
    const first = this.chunks[0]!;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.size -= n;
    return bytes;
  }

  takeAll(): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [];
    this.size = 0;
    return all;
  }
}

type Answer = 'SSLResponse' | 'GSSENCResponse';

interface Frame {
  /** The message's bytes as received, header included: what is forwarded. */
  raw: Buffer;
  /** Undefined for bytes forwarded without parsing (after TLS/GSS was negotiated, or garbage). */
  message: Omit<ProtocolMessage, 'connectionIndex' | 'direction'> | undefined;
}

/** Splits one direction's byte stream into messages (see the framing rules at the top). */
class MessageReader {
  private readonly queue = new ByteQueue();
  /** Frontend only: still in the untyped startup phase. */
  private startup: boolean;
  opaque = false;

  /**
   * `answers` is shared by a connection's two readers: the frontend one adds the one-byte answer
   * each SSL/GSSENC request is owed, the backend one takes them off as they arrive.
   */
  constructor(
    readonly direction: Direction,
    private readonly answers: Answer[],
    private readonly onEncrypted: () => void,
  ) {
    this.startup = direction === 'frontend';
  }

  push(chunk: Buffer): void {
    this.queue.push(chunk);
  }

  /** Everything buffered, unparsed (what the client already sent behind a 'drop-reply' message). */
  takeRest(): Buffer {
    return this.queue.takeAll();
  }

  /** The next complete message, or undefined until more bytes arrive. */
  next(): Frame | undefined {
    const q = this.queue;
    if (q.size === 0) return undefined;
    if (this.opaque) return { raw: q.takeAll(), message: undefined };
    const answer = this.direction === 'backend' ? this.answers[0] : undefined;
    if (answer) {
      this.answers.shift();
      const byte = String.fromCharCode(q.peek(1)[0]!);
      // Servers too old for the request may answer with an ErrorResponse instead: parse that normally.
      if (byte === 'N' || byte === 'S' || byte === 'G') {
        const raw = q.take(1);
        if (byte !== 'N') this.onEncrypted();
        return { raw, message: { type: answer, length: 1, payload: raw } };
      }
    }
    if (this.startup) {
      if (q.size < 8) return undefined;
      const header = q.peek(8);
      const length = header.readInt32BE(0);
      if (length < 8 || length > MAX_STARTUP_LENGTH) return this.giveUp();
      if (q.size < length) return undefined;
      const raw = q.take(length);
      const code = header.readInt32BE(4);
      let type = 'startup';
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        type = code === SSL_REQUEST ? 'SSLRequest' : 'GSSENCRequest';
        this.answers.push(code === SSL_REQUEST ? 'SSLResponse' : 'GSSENCResponse');
      } else if (code === CANCEL_REQUEST) {
        type = 'CancelRequest';
      } else {
        this.startup = false;
      }
      return { raw, message: { type, length, payload: raw.subarray(4) } };
    }
    if (q.size < 5) return undefined;
    const header = q.peek(5);
    const length = header.readInt32BE(1);
    if (length < 4) return this.giveUp();
    if (q.size < length + 1) return undefined;
    const raw = q.take(length + 1);
    const type = String.fromCharCode(raw[0]!);
    const payload = raw.subarray(5);
    return { raw, message: { type, length, payload, text: sqlText(type, payload) } };
  }

  private giveUp(): Frame {
    this.opaque = true;
    return { raw: this.queue.takeAll(), message: undefined };
  }
}

/** The SQL of a Simple Query ('Q': sql\0) or a Parse ('P': name\0 sql\0 ...). */
function sqlText(type: string, payload: Buffer): string | undefined {
  let start = 0;
  if (type === 'P') start = payload.indexOf(0) + 1;
  else if (type !== 'Q') return undefined;
  const end = payload.indexOf(0, start);
  return payload.toString('utf8', start, end < 0 ? payload.length : end);
}

interface LiveRule {
  id: number;
  rule: FaultRule;
  matches: number;
  fired: number;
  removed: boolean;
}

type ConnectionState = 'open' | 'stalled' | 'closing' | 'closed';

/** One accepted connection and its upstream connection to the target. */
class ProxiedConnection {
  state: ConnectionState = 'open';
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;
  private readonly fromClient: MessageReader;
  private readonly fromServer: MessageReader;
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Destination sockets whose source is paused until they drain. */
  private readonly draining = new Set<net.Socket>();

  constructor(
    private readonly proxy: FaultProxy,
    readonly index: number,
    /** Rules with an id below this were added before the connection was accepted. */
    readonly rulesAtAccept: number,
    readonly client: net.Socket,
    readonly server: net.Socket | undefined,
  ) {
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    const encrypted = () => {
      this.fromClient.opaque = true;
      this.fromServer.opaque = true;
    };
    const answers: Answer[] = [];
    this.fromClient = new MessageReader('frontend', answers, encrypted);
    this.fromServer = new MessageReader('backend', answers, encrypted);
    let open = server ? 2 : 1;
    const onClose = () => {
      if (--open > 0) return;
      this.state = 'closed';
      for (const t of this.timers) clearTimeout(t);
      this.resolveClosed();
    };
    client.on('error', () => {}).on('close', onClose);
    if (!server) return;
    server.on('error', () => {}).on('close', onClose);
    client.on('data', (chunk: Buffer) => this.onData('frontend', chunk));
    server.on('data', (chunk: Buffer) => this.onData('backend', chunk));
    // A side that finishes normally (Terminate, server shutdown) or fails ends the other one too,
    // except on a stalled connection, which must stay silent, FIN included.
    client.on('close', () => this.state !== 'stalled' && this.endSoon(server));
    server.on('close', () => this.state !== 'stalled' && this.endSoon(client));
  }

  private onData(direction: Direction, chunk: Buffer): void {
    const [src, dst, reader] = direction === 'frontend'
      ? [this.client, this.server!, this.fromClient]
      : [this.server!, this.client, this.fromServer];
    if (this.state !== 'open') return; // a closing/stalled connection forwards nothing more
    reader.push(chunk);
    dst.cork(); // one writev per chunk rather than one write per small message
    try {
      for (let frame = reader.next(); frame; frame = reader.next()) {
        const rule = frame.message && this.proxy.firingRule(this, { ...frame.message, connectionIndex: this.index, direction });
        if (!rule) {
          this.forward(src, dst, frame.raw);
          continue;
        }
        const when = rule.when ?? (direction === 'frontend' ? 'after' : 'before');
        if (rule.action === 'drop-reply' || when === 'after') dst.write(frame.raw);
        this.apply(rule.action, direction, reader);
        return;
      }
    } finally {
      dst.uncork();
    }
  }

  private forward(src: net.Socket, dst: net.Socket, raw: Buffer): void {
    if (dst.write(raw) || this.draining.has(dst)) return;
    // Backpressure: stop reading until the destination drains, unless a fault has taken over.
    this.draining.add(dst);
    src.pause();
    dst.once('drain', () => {
      this.draining.delete(dst);
      if (this.state === 'open') src.resume();
    });
  }

  private apply(action: FaultAction, direction: Direction, reader: MessageReader): void {
    const client = this.client;
    const server = this.server!;
    if (action === 'stall') {
      this.state = 'stalled';
      client.pause();
      server.pause();
      return;
    }
    this.state = 'closing';
    if (action === 'drop-reply') {
      // Whatever the client already sent behind the message belongs to it (Bind/Execute/Sync after
      // a Parse): without it the server would not execute the statement.
      if (direction === 'frontend') server.write(reader.takeRest());
      client.destroy();
      server.resume(); // keep reading (and discarding) replies so the server never blocks on them
      this.endSoon(server);
      return;
    }
    // 'cut': the destination gets what was already written to it, then FIN; the source goes now.
    const [src, dst] = direction === 'frontend' ? [client, server] : [server, client];
    src.destroy();
    this.endSoon(dst);
  }

  /** Ends a socket gracefully (written bytes still go out), destroying it if it lingers. */
  private endSoon(socket: net.Socket): void {
    if (socket.destroyed || socket.writableEnded) return; // already on its way out, with its timer
    socket.end();
    const t = setTimeout(() => socket.destroy(), GRACE_MS);
    t.unref();
    this.timers.add(t);
  }

  destroy(): void {
    if (this.state !== 'closed') this.state = 'closing';
    this.client.destroy();
    this.server?.destroy();
  }
}

export class FaultProxy {
  readonly events: FaultEvent[] = [];
  private readonly rules: LiveRule[] = [];
  private readonly live = new Set<ProxiedConnection>();
  private readonly all: ProxiedConnection[] = [];
  private readonly eventWaiters = new Set<() => void>();
  private nextRuleId = 0;
  private stallingAccept = false;
  private refusing = false;
  private readonly started = Date.now();

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    private readonly options: FaultProxyOptions,
  ) {}

  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('fault proxy: no TCP address');
    const proxy = new FaultProxy(server, address.port, options);
    server.on('connection', (socket) => proxy.accept(socket));
    return proxy;
  }

  readonly host = '127.0.0.1';

  /** Connections accepted so far (also the index the next one will get). */
  get connections(): number {
    return this.all.length;
  }

  /** Connections with a socket still open. */
  get openConnections(): number {
    return this.live.size;
  }

  addRule(rule: FaultRule): FaultRuleHandle {
    if (rule.action === 'drop-reply' && rule.direction !== 'frontend') throw new Error("fault proxy: 'drop-reply' is a frontend rule");
    const live: LiveRule = { id: this.nextRuleId++, rule, matches: 0, fired: 0, removed: false };
    this.rules.push(live);
    return {
      id: live.id,
      get fired() {
        return live.fired;
      },
      remove: () => {
        live.removed = true;
      },
    };
  }

  clearRules(): void {
    for (const r of this.rules) r.removed = true;
  }

  /** Accept new connections but never connect them onward nor answer: a node that says nothing. */
  stallAccept(on: boolean): void {
    this.stallingAccept = on;
  }

  /** Close new connections at once (with a reset): a node that is down. */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /** Destroys every open connection (both sides) now; new connections are still accepted. */
  cutAll(): void {
    for (const c of this.live) c.destroy();
  }

  /** Resolves once both sockets of connection `index` are closed. */
  connectionClosed(index: number): Promise<void> {
    const c = this.all[index];
    if (!c) return Promise.reject(new Error(`fault proxy: no connection ${index}`));
    return c.closed;
  }

  /** The first event (already logged or future) that satisfies `predicate`; rejects after timeoutMs. */
  waitForEvent(predicate: (e: FaultEvent) => boolean = () => true, timeoutMs = 10_000): Promise<FaultEvent> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const e = this.events.find(predicate);
        if (!e) return false;
        this.eventWaiters.delete(check);
        clearTimeout(timer);
        resolve(e);
        return true;
      };
      const timer = setTimeout(() => {
        this.eventWaiters.delete(check);
        reject(new Error(`fault proxy: no matching event within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) this.eventWaiters.add(check);
    });
  }

  /**
   * Stops listening and destroys every connection, then waits for their sockets to report closed
   * (so `openConnections` is 0 after it) — but never more than about a second, whatever the peers do.
   */
  async close(): Promise<void> {
    const listenerClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const c of this.all) c.destroy();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, 1_000)));
    await Promise.race([Promise.all([listenerClosed, ...this.all.map((c) => c.closed)]), bound]);
    clearTimeout(timer);
  }

  private accept(client: net.Socket): void {
    const index = this.all.length;
    const accepted = (server: net.Socket | undefined) => {
      const c = new ProxiedConnection(this, index, this.nextRuleId, client, server);
      this.all.push(c);
      this.live.add(c);
      void c.closed.then(() => this.live.delete(c));
      return c;
    };
    if (this.refusing) {
      accepted(undefined);
      this.log({ connectionIndex: index, ruleId: undefined, action: 'refuse', direction: 'frontend', type: 'accept' });
      client.resetAndDestroy();
      return;
    }
    if (this.stallingAccept) {
      accepted(undefined).state = 'stalled';
      this.log({ connectionIndex: index, ruleId: undefined, action: 'stall-accept', direction: 'frontend', type: 'accept' });
      client.pause();
      return;
    }
    // Bytes the client sends before the upstream connection is up are queued by the socket.
    const server = net.connect({ host: this.options.targetHost, port: this.options.targetPort });
    server.setNoDelay(true);
    client.setNoDelay(true);
    accepted(server);
  }

  /** @internal The rule that fires for this message on this connection, counting matches; undefined if none. */
  firingRule(connection: ProxiedConnection, msg: ProtocolMessage): FaultRule | undefined {
    for (const r of this.rules) {
      const { rule } = r;
      if (r.removed || rule.direction !== msg.direction) continue;
      if (r.id >= connection.rulesAtAccept && !rule.existing) continue; // added after the connection opened
      if ((rule.once ?? true) && r.fired > 0) continue;
      if (!rule.match(msg)) continue;
      r.matches++;
      if (r.matches < (rule.after ?? 1)) continue;
      r.fired++;
      this.log({ connectionIndex: msg.connectionIndex, ruleId: r.id, action: rule.action, direction: msg.direction, type: msg.type, text: msg.text });
      return rule;
    }
    return undefined;
  }

  private log(e: Omit<FaultEvent, 'at'>): void {
    this.events.push({ at: Date.now() - this.started, ...e });
    for (const check of [...this.eventWaiters]) check();
  }
}

/** A Simple Query or Parse whose SQL matches `re`. */
export function matchQuery(re: RegExp): (msg: ProtocolMessage) => boolean {
  return (msg) => {
    if (msg.text === undefined || (msg.type !== 'Q' && msg.type !== 'P')) return false;
    re.lastIndex = 0; // a /g or /y regex would otherwise carry state from the previous message
    return re.test(msg.text);
  };
}

/** A message of one of the given types (e.g. 'Z', or 'SSLRequest'). */
export function matchType(...types: string[]): (msg: ProtocolMessage) => boolean {
  return (msg) => types.includes(msg.type);
}

/**
 * The CopyData message with which at least n payload bytes of CopyData have passed on a
 * connection (counted from when the matcher first sees that connection). True once per connection.
 */
export function matchCopyDataBytes(n: number): (msg: ProtocolMessage) => boolean {
  const seen = new Map<number, number>();
  return (msg) => {
    if (msg.type !== 'd') return false;
    const before = seen.get(msg.connectionIndex) ?? 0;
    const now = before + msg.payload.length;
    seen.set(msg.connectionIndex, now);
    return before < n && now >= n;
  };
}
