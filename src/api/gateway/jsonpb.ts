/**
 * Protobuf messages as etcd 3.4's gateway maps them to JSON: golang/protobuf's jsonpb with OrigName
 * (grpc-gateway v1's default marshaler, which etcd's gw.NewServeMux() keeps) and EmitDefaults off.
 *
 *   out: field names as in the .proto, int64/uint64 as decimal strings, bytes as padded base64, enums by
 *        name (number when unknown), zero scalars / empty lists / absent messages omitted, a set oneof
 *        member always written, fields in declaration order, strings HTML-escaped as json.Marshal does;
 *   in:  the .proto name or its JSON (camel) name, numbers or quoted numbers, enum names or numbers,
 *        null as unset, unknown fields ignored (grpc-gateway sets AllowUnknownFields), and Go's error
 *        texts ("json: cannot unmarshal bool into Go value of type int64", ...).
 *
 * Everything is driven by the descriptors of proto/ (src/gen/descriptor-set.ts); messages cross to and
 * from the services as protobuf bytes, so the services' own generated codecs stay the only ones.
 */
import {
  create, createFileRegistry, fromBinary, toBinary, ScalarType,
  type DescEnum, type DescField, type DescMessage, type DescMethod, type FileRegistry,
} from '@bufbuild/protobuf';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { fileDescriptorSetBase64 } from '../../gen/descriptor-set.js';
import { checkValid, goBase64Decode, GoJsonError, goQuote, kindName, parseValid, type JsonNode } from './go-json.js';

type Init = Record<string, unknown>;
type Msg = Record<string, unknown>;

const int64Kinds = new Set([ScalarType.INT64, ScalarType.SINT64, ScalarType.SFIXED64]);
const uint64Kinds = new Set([ScalarType.UINT64, ScalarType.FIXED64]);
const int32Kinds = new Set([ScalarType.INT32, ScalarType.SINT32, ScalarType.SFIXED32]);
const uint32Kinds = new Set([ScalarType.UINT32, ScalarType.FIXED32]);

/** Go's name for the field's type in "into Go value of type X". */
function goScalarType(t: ScalarType): string {
  if (int64Kinds.has(t)) return 'int64';
  if (uint64Kinds.has(t)) return 'uint64';
  if (int32Kinds.has(t)) return 'int32';
  if (uint32Kinds.has(t)) return 'uint32';
  switch (t) {
    case ScalarType.BOOL: return 'bool';
    case ScalarType.STRING: return 'string';
    case ScalarType.BYTES: return '[]uint8';
    case ScalarType.FLOAT: return 'float32';
    default: return 'float64';
  }
}

/** gogo's Go type of an enum: package.Outer_Inner. */
function goEnumType(e: DescEnum): string {
  const pkg = e.file.proto.package;
  return `${pkg}.${e.typeName.slice(pkg.length + 1).replaceAll('.', '_')}`;
}

function cannot(what: string, goType: string): GoJsonError {
  return new GoJsonError(`json: cannot unmarshal ${what} into Go value of type ${goType}`);
}

/** strconv.ParseInt / ParseUint of a JSON number literal, within the type's bits. */
function parseInteger(raw: string, t: { signed: boolean; bits: 32 | 64 }, goType: string): bigint {
  if (!/^-?[0-9]+$/.test(raw) || (!t.signed && raw.startsWith('-'))) throw cannot(`number ${raw}`, goType);
  const n = BigInt(raw);
  const bits = BigInt(t.bits);
  const min = t.signed ? -(1n << (bits - 1n)) : 0n;
  const max = t.signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
  if (n < min || n > max) throw cannot(`number ${raw}`, goType);
  return n;
}

function integerShape(t: ScalarType): { signed: boolean; bits: 32 | 64 } | null {
  if (int64Kinds.has(t)) return { signed: true, bits: 64 };
  if (uint64Kinds.has(t)) return { signed: false, bits: 64 };
  if (int32Kinds.has(t)) return { signed: true, bits: 32 };
  if (uint32Kinds.has(t)) return { signed: false, bits: 32 };
  return null;
}

/** jsonpb drops the quotes of a quoted number and reads what is inside as JSON (json.Unmarshal). */
function unquoteNumber(node: JsonNode): JsonNode {
  if (node.type !== 'string') return node;
  const inner = Buffer.from(node.raw.slice(1, -1), 'utf8');
  checkValid(inner);
  return parseValid(inner.toString('utf8'));
}

function scalarFromJson(t: ScalarType, input: JsonNode): unknown {
  const goType = goScalarType(t);
  const shape = integerShape(t);
  const node = shape !== null || t === ScalarType.FLOAT || t === ScalarType.DOUBLE ? unquoteNumber(input) : input;
  if (node.type === 'null') return undefined;
  if (shape !== null) {
    if (node.type !== 'number') throw cannot(kindName(node), goType);
    const n = parseInteger(node.raw, shape, goType);
    return shape.bits === 64 ? n : Number(n);
  }
  switch (t) {
    case ScalarType.BOOL:
      if (node.type !== 'bool') throw cannot(kindName(node), goType);
      return node.value;
    case ScalarType.STRING:
      if (node.type !== 'string') throw cannot(kindName(node), goType);
      return node.value;
    case ScalarType.BYTES:
      if (node.type !== 'string') throw cannot(kindName(node), goType);
      return goBase64Decode(node.value);
    default:
      if (node.type !== 'number') throw cannot(kindName(node), goType);
      return Number(node.raw);
  }
}

function enumFromJson(e: DescEnum, node: JsonNode): number | undefined {
  if (node.type === 'string') {
    // jsonpb looks the text between the quotes up as it is, escapes included.
    const name = node.raw.slice(1, -1);
    const value = e.values.find((v) => v.name === name);
    if (value === undefined) throw new GoJsonError(`unknown value ${JSON.stringify(name)} for enum ${goEnumType(e)}`);
    return value.number;
  }
  if (node.type === 'null') return undefined;
  if (node.type !== 'number') throw cannot(kindName(node), goEnumType(e));
  return Number(parseInteger(node.raw, { signed: true, bits: 32 }, goEnumType(e)));
}

const maxJsonDepth = 100;

function singleFromJson(field: DescField, node: JsonNode, depth: number): unknown {
  if (field.fieldKind === 'message' || (field.fieldKind === 'list' && field.listKind === 'message')) {
    return messageFromJson(field.message!, node, depth + 1);
  }
  if (field.fieldKind === 'enum' || (field.fieldKind === 'list' && field.listKind === 'enum')) {
    return enumFromJson(field.enum!, node);
  }
  if (field.fieldKind === 'scalar' || field.fieldKind === 'list') return scalarFromJson(field.scalar!, node);
  throw new GoJsonError(`map fields are not supported: ${field.name}`);
}

function fieldFromJson(field: DescField, node: JsonNode, depth: number): unknown {
  if (field.fieldKind !== 'list') return singleFromJson(field, node, depth);
  if (node.type === 'null') return undefined;
  if (node.type !== 'array') throw cannot(kindName(node), '[]json.RawMessage');
  return node.items.map((item) => singleFromJson(field, item, depth) ?? defaultOf(field));
}

function defaultOf(field: DescField): unknown {
  if (field.message !== undefined) return {};
  if (field.enum !== undefined) return 0;
  const t = field.scalar!;
  if (t === ScalarType.BOOL) return false;
  if (t === ScalarType.STRING) return '';
  if (t === ScalarType.BYTES) return new Uint8Array(0);
  return int64Kinds.has(t) || uint64Kinds.has(t) ? 0n : 0;
}

/** Plain fields first, then oneofs, each in declaration order: the first failure is the one reported. */
function messageFromJson(desc: DescMessage, node: JsonNode, depth: number): Init | undefined {
  if (node.type === 'null') return undefined;
  if (node.type !== 'object') throw cannot(kindName(node), 'map[string]json.RawMessage');
  if (depth > maxJsonDepth) throw new GoJsonError('exceeded max depth');
  const init: Init = {};
  const take = (field: DescField): JsonNode | undefined => node.fields.get(field.jsonName) ?? node.fields.get(field.name);
  for (const field of desc.fields) {
    if (field.oneof !== undefined) continue;
    const value = take(field);
    if (value === undefined) continue;
    const parsed = fieldFromJson(field, value, depth);
    if (parsed !== undefined) init[field.localName] = parsed;
  }
  for (const oneof of desc.oneofs) {
    for (const field of oneof.fields) {
      const value = take(field);
      if (value === undefined) continue;
      const parsed = singleFromJson(field, value, depth);
      // A null message leaves the member empty on the wire; a null scalar sets it to zero.
      if (parsed === undefined && field.message !== undefined) continue;
      init[oneof.localName] = { case: field.localName, value: parsed ?? defaultOf(field) };
    }
  }
  return init;
}

// ------------------------------------------------------------------------------------------ output

function scalarToJson(t: ScalarType, value: unknown): string {
  if (int64Kinds.has(t) || uint64Kinds.has(t)) return `"${String(value)}"`;
  switch (t) {
    case ScalarType.BOOL: return value === true ? 'true' : 'false';
    case ScalarType.STRING: return goQuote(value as string);
    case ScalarType.BYTES: return `"${Buffer.from(value as Uint8Array).toString('base64')}"`;
    default: return String(value);
  }
}

function isZero(value: unknown): boolean {
  if (value === undefined || value === 0 || value === 0n || value === false || value === '') return true;
  if (value instanceof Uint8Array) return value.length === 0;
  return Array.isArray(value) && value.length === 0;
}

function singleToJson(field: DescField, value: unknown): string {
  if (field.message !== undefined) return messageToJson(field.message, value as Msg);
  if (field.enum !== undefined) {
    const known = field.enum.values.find((v) => v.number === value);
    return known === undefined ? String(value) : `"${known.name}"`;
  }
  return scalarToJson(field.scalar!, value);
}

function messageToJson(desc: DescMessage, msg: Msg): string {
  const parts: string[] = [];
  for (const member of desc.members) {
    if (member.kind === 'oneof') {
      const set = msg[member.localName] as { case?: string; value?: unknown } | undefined;
      const field = member.fields.find((f) => f.localName === set?.case);
      if (field !== undefined) parts.push(`"${field.name}":${singleToJson(field, set?.value)}`);
      continue;
    }
    const value = msg[member.localName];
    if (isZero(value)) continue;
    if (member.fieldKind === 'list') {
      parts.push(`"${member.name}":[${(value as unknown[]).map((v) => singleToJson(member, v)).join(',')}]`);
    } else {
      parts.push(`"${member.name}":${singleToJson(member, value)}`);
    }
  }
  return `{${parts.join(',')}}`;
}

// ------------------------------------------------------------------------------------------ the mapper

export interface MethodTypes {
  readonly input: DescMessage;
  readonly output: DescMessage;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

export class JsonMapper {
  readonly #registry: FileRegistry;

  constructor(registry: FileRegistry) {
    this.#registry = registry;
  }

  /** The mapper over every message and service in proto/. */
  static fromProtoDescriptors(): JsonMapper {
    const set = fromBinary(FileDescriptorSetSchema, Buffer.from(fileDescriptorSetBase64, 'base64'));
    return new JsonMapper(createFileRegistry(set));
  }

  /** The message types of a gRPC method path such as /etcdserverpb.KV/Range. */
  method(path: string): MethodTypes | undefined {
    const slash = path.lastIndexOf('/');
    const service = this.#registry.getService(path.slice(1, slash));
    const method: DescMethod | undefined = service?.methods.find((m) => m.name === path.slice(slash + 1));
    if (method === undefined) return undefined;
    return {
      input: method.input,
      output: method.output,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
    };
  }

  /** JSON (already parsed, or null for an empty body) to protobuf bytes; throws GoJsonError. */
  encodeRequest(desc: DescMessage, node: JsonNode | null): Uint8Array {
    const init = node === null ? {} : (messageFromJson(desc, node, 0) ?? {});
    return toBinary(desc, create(desc, init as never));
  }

  /** Protobuf bytes to jsonpb's compact JSON text. */
  decodeResponse(desc: DescMessage, bytes: Uint8Array): string {
    return messageToJson(desc, fromBinary(desc, bytes) as unknown as Msg);
  }
}
