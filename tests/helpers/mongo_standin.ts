/**
 * A MongoDB stand-in for tests: a TCP server on 127.0.0.1 that speaks the wire protocol
 * (OP_MSG, and OP_QUERY for the driver's first hello) for exactly the commands the real
 * driver sends in the connector's flows: hello/isMaster, ping, buildInfo, listCollections,
 * find, getMore, killCursors, aggregate ($match, $sample, $sort, $skip, $limit, $project),
 * count, endSessions, and SCRAM-SHA-256 authentication through saslStart/saslContinue
 * (speculative authentication included) computed for real, so a wrong password fails the
 * way a server fails it: code 18. Users are defined in `admin`; a user's `read` list names
 * the databases it may read, and anything else answers code 13 (Unauthorized).
 *
 * No MongoDB server can be installed on these machines; with MONGODB_URL set, the tests use
 * a real one instead.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";
import { Buffer } from "node:buffer";
import { createServer, type Socket } from "node:net";
import { Binary, BSON, type Document, Long, ObjectId } from "bson";

const OP_REPLY = 1;
const OP_QUERY = 2004;
const OP_MSG = 2013;
const MAX_WIRE_VERSION = 21; // MongoDB 7.0
const SCRAM_ITERATIONS = 4096;

export type StandinUser = {
  name: string;
  /** ASCII passwords only: SASLprep leaves them unchanged, so none is applied here. */
  password: string;
  /** Databases the user may read; an empty list means no read rights at all. */
  read: string[];
};

export type MongoStandin = {
  host: string;
  port: number;
  /** Databases → collections → documents, changeable by the test. */
  databases: Map<string, Map<string, Document[]>>;
  /** Names of the commands received, in order. */
  commands: string[];
  close(): Promise<void>;
};

type ScramUser = StandinUser & { salt: Buffer; storedKey: Buffer; serverKey: Buffer };

type Conversation = {
  user: ScramUser | null;
  clientFirstBare: string;
  serverFirst: string;
  nonce: string;
};

type Session = {
  id: number;
  user: ScramUser | null;
  conversations: Map<number, Conversation>;
};

type Cursor = { ns: string; remaining: Document[] };

class CommandError extends Error {
  constructor(readonly code: number, readonly codeName: string, message: string) {
    super(message);
  }
}

function hmac(key: Buffer, text: string): Buffer {
  return createHmac("sha256", key).update(text).digest();
}

function sha256(data: Buffer): Buffer {
  return createHash("sha256").update(data).digest();
}

function scramUser(user: StandinUser): ScramUser {
  const salt = randomBytes(16);
  const salted = pbkdf2Sync(user.password, salt, SCRAM_ITERATIONS, 32, "sha256");
  return {
    ...user,
    salt,
    storedKey: sha256(hmac(salted, "Client Key")),
    serverKey: hmac(salted, "Server Key"),
  };
}

/** `a=1,b=2` → { a: "1", b: "2" } (SCRAM attribute lists). */
function attributes(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(",")) {
    const at = part.indexOf("=");
    if (at > 0) out[part.slice(0, at)] = part.slice(at + 1);
  }
  return out;
}

function bytesOf(payload: unknown): Buffer {
  if (payload instanceof Binary) return Buffer.from(payload.buffer.subarray(0, payload.position));
  if (payload instanceof Uint8Array) return Buffer.from(payload);
  return Buffer.alloc(0);
}

function authenticationFailed(): CommandError {
  return new CommandError(18, "AuthenticationFailed", "Authentication failed.");
}

// ---- Matching, ordering, projection of documents ------------------------------------------

function typeRank(value: unknown): number {
  if (value === undefined || value === null) return 1;
  if (typeof value === "number" || typeof value === "bigint") return 2;
  const bsonType = (value as { _bsontype?: string })?._bsontype;
  if (
    bsonType === "Long" || bsonType === "Decimal128" || bsonType === "Int32" ||
    bsonType === "Double"
  ) {
    return 2;
  }
  if (typeof value === "string") return 3;
  if (bsonType === "ObjectId") return 7;
  if (typeof value === "boolean") return 8;
  if (value instanceof Date) return 9;
  if (Array.isArray(value)) return 5;
  return 4;
}

function numeric(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "bigint") return Number(value);
  return Number((value as { toString(): string }).toString());
}

/** BSON comparison order: type brackets first, then values within a type. */
export function compareValues(a: unknown, b: unknown): number {
  const rankA = typeRank(a);
  const rankB = typeRank(b);
  if (rankA !== rankB) return rankA - rankB;
  switch (rankA) {
    case 1:
      return 0;
    case 2:
      return numeric(a) - numeric(b);
    case 3:
      return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
    case 7:
      return (a as ObjectId).toHexString().localeCompare((b as ObjectId).toHexString());
    case 8:
      return Number(a) - Number(b);
    case 9:
      return (a as Date).getTime() - (b as Date).getTime();
    default:
      return JSON.stringify(a).localeCompare(JSON.stringify(b));
  }
}

function valueAt(document: Document, path: string): unknown {
  let current: unknown = document;
  for (const key of path.split(".")) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Document)[key];
  }
  return current;
}

function isOperatorObject(value: unknown): value is Document {
  return value !== null && typeof value === "object" && !Array.isArray(value) &&
    !(value instanceof Date) && !(value as { _bsontype?: string })._bsontype &&
    Object.keys(value).length > 0 && Object.keys(value).every((key) => key.startsWith("$"));
}

function matchesCondition(value: unknown, condition: unknown): boolean {
  if (!isOperatorObject(condition)) return compareValues(value, condition) === 0;
  return Object.entries(condition).every(([operator, operand]) => {
    switch (operator) {
      case "$eq":
        return compareValues(value, operand) === 0;
      case "$ne":
        return compareValues(value, operand) !== 0;
      case "$gt":
        return value !== undefined && typeRank(value) === typeRank(operand) &&
          compareValues(value, operand) > 0;
      case "$gte":
        return value !== undefined && typeRank(value) === typeRank(operand) &&
          compareValues(value, operand) >= 0;
      case "$lt":
        return value !== undefined && typeRank(value) === typeRank(operand) &&
          compareValues(value, operand) < 0;
      case "$lte":
        return value !== undefined && typeRank(value) === typeRank(operand) &&
          compareValues(value, operand) <= 0;
      case "$in":
        return (operand as unknown[]).some((item) => compareValues(value, item) === 0);
      case "$exists":
        return (value !== undefined) === Boolean(operand);
      default:
        throw new CommandError(2, "BadValue", `unknown operator: ${operator}`);
    }
  });
}

export function matches(document: Document, filter: Document | undefined): boolean {
  if (!filter) return true;
  return Object.entries(filter).every(([key, condition]) => {
    if (key === "$and") return (condition as Document[]).every((inner) => matches(document, inner));
    if (key === "$or") return (condition as Document[]).some((inner) => matches(document, inner));
    return matchesCondition(valueAt(document, key), condition);
  });
}

function sortDocuments(documents: Document[], sort: Document | undefined): Document[] {
  if (!sort || Object.keys(sort).length === 0) return documents;
  const keys = Object.entries(sort);
  return [...documents].sort((a, b) => {
    for (const [key, direction] of keys) {
      const order = compareValues(valueAt(a, key), valueAt(b, key));
      if (order !== 0) return Number(direction) < 0 ? -order : order;
    }
    return 0;
  });
}

function project(document: Document, projection: Document | undefined): Document {
  if (!projection || Object.keys(projection).length === 0) return document;
  const entries = Object.entries(projection);
  const including = entries.some(([key, value]) => key !== "_id" && Boolean(value));
  if (including) {
    const out: Document = {};
    if (projection._id !== 0 && projection._id !== false) out._id = document._id;
    for (const [key, value] of entries) if (value && key in document) out[key] = document[key];
    return out;
  }
  const out = { ...document };
  for (const [key, value] of entries) if (!value) delete out[key];
  return out;
}

function sample(documents: Document[], size: number): Document[] {
  const copy = [...documents];
  for (let index = copy.length - 1; index > 0; index--) {
    const other = Math.floor(Math.random() * (index + 1));
    [copy[index], copy[other]] = [copy[other], copy[index]];
  }
  return copy.slice(0, size);
}

function runPipeline(documents: Document[], pipeline: Document[]): Document[] {
  let current = documents;
  for (const stage of pipeline) {
    const [name, argument] = Object.entries(stage)[0] ?? [];
    switch (name) {
      case "$match":
        current = current.filter((document) => matches(document, argument));
        break;
      case "$sample":
        current = sample(current, Number(argument.size));
        break;
      case "$sort":
        current = sortDocuments(current, argument);
        break;
      case "$skip":
        current = current.slice(Number(argument));
        break;
      case "$limit":
        current = current.slice(0, Number(argument));
        break;
      case "$project":
        current = current.map((document) => project(document, argument));
        break;
      default:
        throw new CommandError(
          40324,
          "Location40324",
          `Unrecognized pipeline stage name: '${name}'`,
        );
    }
  }
  return current;
}

// ---- Wire protocol -------------------------------------------------------------------------

function header(length: number, requestId: number, responseTo: number, opCode: number): Buffer {
  const buffer = Buffer.alloc(16);
  buffer.writeInt32LE(length, 0);
  buffer.writeInt32LE(requestId, 4);
  buffer.writeInt32LE(responseTo, 8);
  buffer.writeInt32LE(opCode, 12);
  return buffer;
}

function opMsgReply(requestId: number, responseTo: number, body: Document): Buffer {
  const document = Buffer.from(BSON.serialize(body));
  const flags = Buffer.alloc(5); // flagBits (0) and section kind 0
  return Buffer.concat([
    header(16 + 5 + document.length, requestId, responseTo, OP_MSG),
    flags,
    document,
  ]);
}

function opReply(requestId: number, responseTo: number, body: Document): Buffer {
  const document = Buffer.from(BSON.serialize(body));
  const fields = Buffer.alloc(20); // responseFlags, cursorID (0), startingFrom, numberReturned
  fields.writeInt32LE(1, 16);
  return Buffer.concat([
    header(16 + 20 + document.length, requestId, responseTo, OP_REPLY),
    fields,
    document,
  ]);
}

function readCString(buffer: Buffer, at: number): [string, number] {
  const end = buffer.indexOf(0, at);
  return [buffer.toString("utf8", at, end), end + 1];
}

function readDocument(buffer: Buffer, at: number): [Document, number] {
  const size = buffer.readInt32LE(at);
  return [BSON.deserialize(buffer.subarray(at, at + size)), at + size];
}

/** The command document of an OP_MSG body (kind 0 section, with kind 1 sequences merged in). */
function parseOpMsg(body: Buffer): Document {
  const flags = body.readUInt32LE(0);
  const end = flags & 1 ? body.length - 4 : body.length;
  let at = 4;
  let command: Document = {};
  const sequences: Record<string, Document[]> = {};
  while (at < end) {
    const kind = body[at++];
    if (kind === 0) {
      [command, at] = readDocument(body, at);
    } else {
      const sectionEnd = at + body.readInt32LE(at);
      let [identifier, inner] = readCString(body, at + 4);
      const documents: Document[] = [];
      while (inner < sectionEnd) {
        let document: Document;
        [document, inner] = readDocument(body, inner);
        documents.push(document);
      }
      sequences[identifier] = documents;
      at = sectionEnd;
    }
  }
  return { ...command, ...sequences };
}

/** The query document of an OP_QUERY body (the driver's first hello). */
function parseOpQuery(body: Buffer): Document {
  const [collection, at] = readCString(body, 4);
  const [query] = readDocument(body, at + 8);
  return { ...(query.$query ?? query), $db: collection.split(".")[0] };
}

/** Starts the stand-in with seeded databases and users (no users: no authentication). */
export async function startMongoStandin(options: {
  databases: Record<string, Record<string, Document[]>>;
  users?: StandinUser[];
  /** Answer as the primary of a one-member replica set with this name. */
  setName?: string;
}): Promise<MongoStandin> {
  const databases = new Map(
    Object.entries(options.databases).map(([name, collections]) => [
      name,
      new Map(
        Object.entries(collections).map(([collection, documents]) => [collection, [...documents]]),
      ),
    ]),
  );
  const users = new Map((options.users ?? []).map((user) => [user.name, scramUser(user)]));
  const authRequired = users.size > 0;
  const cursors = new Map<number, Cursor>();
  const commands: string[] = [];
  const sockets = new Set<Socket>();
  let nextCursor = 1;
  let nextConnection = 1;
  let nextRequest = 1;

  function collectionOf(db: string, name: string): Document[] {
    return databases.get(db)?.get(name) ?? [];
  }

  function requireRead(session: Session, db: string, command: string) {
    if (!authRequired) return;
    if (!session.user) {
      throw new CommandError(13, "Unauthorized", `Command ${command} requires authentication`);
    }
    if (!session.user.read.includes(db)) {
      throw new CommandError(
        13,
        "Unauthorized",
        `not authorized on ${db} to execute command { ${command} }`,
      );
    }
  }

  function firstBatch(ns: string, documents: Document[], batchSize: number | undefined) {
    const size = batchSize && batchSize > 0 ? batchSize : 101;
    const batch = documents.slice(0, size);
    const remaining = documents.slice(size);
    let id = 0;
    if (remaining.length) {
      id = nextCursor++;
      cursors.set(id, { ns, remaining });
    }
    return { cursor: { id: Long.fromNumber(id), ns, firstBatch: batch }, ok: 1 };
  }

  function saslStart(session: Session, payload: Buffer): Document {
    const text = payload.toString("utf8");
    if (!text.startsWith("n,,")) throw authenticationFailed();
    const clientFirstBare = text.slice(3);
    const fields = attributes(clientFirstBare);
    const name = (fields.n ?? "").replaceAll("=2C", ",").replaceAll("=3D", "=");
    const user = users.get(name) ?? null;
    // An unknown user still gets a challenge: the failure comes at the proof, as on a server.
    const salt = user?.salt ?? randomBytes(16);
    const nonce = `${fields.r}${randomBytes(18).toString("base64")}`;
    const serverFirst = `r=${nonce},s=${salt.toString("base64")},i=${SCRAM_ITERATIONS}`;
    const conversationId = session.conversations.size + 1;
    session.conversations.set(conversationId, { user, clientFirstBare, serverFirst, nonce });
    return {
      conversationId,
      done: false,
      payload: new Binary(Buffer.from(serverFirst)),
      ok: 1,
    };
  }

  function saslContinue(session: Session, conversationId: number, payload: Buffer): Document {
    const conversation = session.conversations.get(conversationId);
    if (!conversation) throw new CommandError(17, "ProtocolError", "No SASL session state found");
    session.conversations.delete(conversationId);
    const text = payload.toString("utf8");
    const proofAt = text.lastIndexOf(",p=");
    const withoutProof = text.slice(0, proofAt);
    const fields = attributes(text);
    const user = conversation.user;
    if (!user || proofAt < 0 || fields.r !== conversation.nonce) throw authenticationFailed();
    const authMessage =
      `${conversation.clientFirstBare},${conversation.serverFirst},${withoutProof}`;
    const signature = hmac(user.storedKey, authMessage);
    const proof = Buffer.from(fields.p ?? "", "base64");
    if (proof.length !== signature.length) throw authenticationFailed();
    const clientKey = Buffer.from(proof.map((byte, index) => byte ^ signature[index]));
    if (!timingSafeEqual(sha256(clientKey), user.storedKey)) throw authenticationFailed();
    session.user = user;
    const serverSignature = hmac(user.serverKey, authMessage).toString("base64");
    return {
      conversationId,
      done: true,
      payload: new Binary(Buffer.from(`v=${serverSignature}`)),
      ok: 1,
    };
  }

  function hello(session: Session, command: Document, legacy: boolean): Document {
    const reply: Document = {
      helloOk: true,
      isWritablePrimary: true,
      maxBsonObjectSize: 16 * 1024 * 1024,
      maxMessageSizeBytes: 48_000_000,
      maxWriteBatchSize: 100_000,
      localTime: new Date(),
      logicalSessionTimeoutMinutes: 30,
      connectionId: session.id,
      minWireVersion: 0,
      maxWireVersion: MAX_WIRE_VERSION,
      readOnly: false,
      ok: 1,
    };
    if (legacy) reply.ismaster = true;
    if (options.setName) {
      const me = `127.0.0.1:${port}`;
      Object.assign(reply, {
        setName: options.setName,
        hosts: [me],
        primary: me,
        me,
        setVersion: 1,
      });
    }
    if (typeof command.saslSupportedMechs === "string") {
      const name = command.saslSupportedMechs.split(".").slice(1).join(".");
      if (users.has(name)) reply.saslSupportedMechs = ["SCRAM-SHA-256"];
    }
    const speculative = command.speculativeAuthenticate as Document | undefined;
    if (speculative?.mechanism === "SCRAM-SHA-256") {
      const started = saslStart(session, bytesOf(speculative.payload));
      // A server answers speculation only for a user it knows; otherwise the driver asks again.
      const conversation = session.conversations.get(started.conversationId);
      if (conversation?.user) {
        reply.speculativeAuthenticate = {
          conversationId: started.conversationId,
          done: false,
          payload: started.payload,
        };
      }
    }
    return reply;
  }

  function run(session: Session, command: Document, legacy: boolean): Document {
    const name = Object.keys(command)[0] ?? "";
    const db = String(command.$db ?? "admin");
    commands.push(name);
    switch (name) {
      case "hello":
      case "isMaster":
      case "ismaster":
        return hello(session, command, name !== "hello" || legacy);
      case "ping":
      case "endSessions":
        return { ok: 1 };
      case "buildInfo":
      case "buildinfo":
        return {
          version: "7.0.14",
          versionArray: [7, 0, 14, 0],
          gitVersion: "standin",
          bits: 64,
          maxBsonObjectSize: 16 * 1024 * 1024,
          ok: 1,
        };
      case "saslStart":
        if (command.mechanism !== "SCRAM-SHA-256") {
          throw new CommandError(2, "BadValue", `Unsupported mechanism ${command.mechanism}`);
        }
        return saslStart(session, bytesOf(command.payload));
      case "saslContinue":
        return saslContinue(session, Number(command.conversationId), bytesOf(command.payload));
      case "listCollections": {
        const authorizedOnly = command.authorizedCollections === true && command.nameOnly === true;
        if (!(authorizedOnly && session.user)) requireRead(session, db, name);
        const readable = !authRequired || (session.user?.read.includes(db) ?? false);
        const names = readable ? [...(databases.get(db)?.keys() ?? [])] : [];
        const entries = names
          .map((collection) => ({
            name: collection,
            type: "collection",
            options: {},
            info: { readOnly: false },
            idIndex: { v: 2, key: { _id: 1 }, name: "_id_" },
          }))
          .filter((entry) => matches(entry, command.filter));
        return firstBatch(`${db}.$cmd.listCollections`, entries, command.cursor?.batchSize);
      }
      case "find": {
        requireRead(session, db, name);
        const collection = String(command.find);
        let documents = collectionOf(db, collection).filter((document) =>
          matches(document, command.filter)
        );
        documents = sortDocuments(documents, command.sort);
        if (command.skip) documents = documents.slice(Number(command.skip));
        if (command.limit) documents = documents.slice(0, Math.abs(Number(command.limit)));
        documents = documents.map((document) => project(document, command.projection));
        const batchSize = command.singleBatch ? documents.length || 1 : command.batchSize;
        return firstBatch(`${db}.${collection}`, documents, batchSize);
      }
      case "aggregate": {
        requireRead(session, db, name);
        const collection = String(command.aggregate);
        const documents = runPipeline(collectionOf(db, collection), command.pipeline ?? []);
        return firstBatch(`${db}.${collection}`, documents, command.cursor?.batchSize);
      }
      case "getMore": {
        requireRead(session, db, name);
        const id = Number(command.getMore);
        const cursor = cursors.get(id);
        if (!cursor) throw new CommandError(43, "CursorNotFound", `cursor id ${id} not found`);
        const size = Number(command.batchSize) > 0
          ? Number(command.batchSize)
          : cursor.remaining.length;
        const batch = cursor.remaining.slice(0, size);
        cursor.remaining = cursor.remaining.slice(size);
        const done = cursor.remaining.length === 0;
        if (done) cursors.delete(id);
        return {
          cursor: { id: Long.fromNumber(done ? 0 : id), ns: cursor.ns, nextBatch: batch },
          ok: 1,
        };
      }
      case "killCursors": {
        const ids = (command.cursors as unknown[]).map((id) => Number(id));
        for (const id of ids) cursors.delete(id);
        return {
          cursorsKilled: ids.map((id) => Long.fromNumber(id)),
          cursorsNotFound: [],
          cursorsAlive: [],
          cursorsUnknown: [],
          ok: 1,
        };
      }
      case "count": {
        requireRead(session, db, name);
        const documents = collectionOf(db, String(command.count));
        return {
          n: documents.filter((document) => matches(document, command.query)).length,
          ok: 1,
        };
      }
      default:
        throw new CommandError(59, "CommandNotFound", `no such command: '${name}'`);
    }
  }

  function answer(session: Session, command: Document, legacy: boolean): Document {
    try {
      return run(session, command, legacy);
    } catch (error) {
      if (error instanceof CommandError) {
        return { ok: 0, errmsg: error.message, code: error.code, codeName: error.codeName };
      }
      return { ok: 0, errmsg: String(error), code: 1, codeName: "InternalError" };
    }
  }

  let port = 0;
  const server = createServer((socket) => {
    sockets.add(socket);
    const session: Session = { id: nextConnection++, user: null, conversations: new Map() };
    let pending = Buffer.alloc(0);
    socket.on("data", (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 16 && pending.length >= pending.readInt32LE(0)) {
        const length = pending.readInt32LE(0);
        const requestId = pending.readInt32LE(4);
        const opCode = pending.readInt32LE(12);
        const body = pending.subarray(16, length);
        pending = pending.subarray(length);
        if (opCode === OP_MSG) {
          socket.write(
            opMsgReply(nextRequest++, requestId, answer(session, parseOpMsg(body), false)),
          );
        } else if (opCode === OP_QUERY) {
          socket.write(
            opReply(nextRequest++, requestId, answer(session, parseOpQuery(body), true)),
          );
        } else {
          socket.destroy();
        }
      }
    });
    socket.on("error", () => socket.destroy());
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  port = typeof address === "object" && address ? address.port : 0;

  return {
    host: "127.0.0.1",
    port,
    databases,
    commands,
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export { ObjectId };
