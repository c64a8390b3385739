/**
 * A safe reader and a writer for the one kind of pickle a PyTorch checkpoint needs: a state dict
 * (an OrderedDict of name -> tensor) as torch.save writes it.
 *
 * Python's pickle is a small stack machine whose GLOBAL and REDUCE opcodes call arbitrary
 * functions; that is how a pickle runs code. This reader never calls anything. It interprets a
 * fixed subset of opcodes (containers, numbers, strings, memo) and treats the few globals a state
 * dict mentions (collections.OrderedDict, torch._utils._rebuild_tensor_v2, torch.*Storage) as
 * inert tags: REDUCE on a tag builds a plain description (a dict, a tensor reference), and any
 * other opcode or global is refused with its name and byte position. The result is data only:
 * which storage, offset, shape and stride each tensor has.
 */
import { inputError } from './errors.js';

/** Storage classes torch.save names, and the safetensors dtype of their elements. */
export const STORAGE_DTYPES: Readonly<Record<string, string>> = Object.freeze({
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
});

export interface StorageRef {
  kind: 'storage';
  dtype: string;
  key: string;
  location: string;
  numel: number;
}
export interface TensorRef {
  kind: 'tensor';
  storage: StorageRef;
  offset: number;
  shape: number[];
  stride: number[];
}

class Tuple {
  constructor(readonly items: Value[]) {}
}
class List {
  constructor(readonly items: Value[]) {}
}
class Dict {
  readonly map = new Map<string | number, Value>();
}
class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
type Value = null | boolean | number | string | Tuple | List | Dict | Global | StorageRef | TensorRef;
const MARK = Symbol('mark');
type Slot = Value | typeof MARK;

const MAX_SLOTS = 1 << 20;

const ALLOWED_GLOBALS = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...Object.keys(STORAGE_DTYPES).map((s) => `torch.${s}`),
]);

/** Opcode names, for messages (every opcode of protocols 0-5; only some are interpreted). */
const OPNAMES: Record<number, string> = {
  0x28: 'MARK',
  0x2e: 'STOP',
  0x30: 'POP',
  0x31: 'POP_MARK',
  0x32: 'DUP',
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4a: 'BININT',
  0x4b: 'BININT1',
  0x4c: 'LONG',
  0x4d: 'BININT2',
  0x4e: 'NONE',
  0x50: 'PERSID',
  0x51: 'BINPERSID',
  0x52: 'REDUCE',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x58: 'BINUNICODE',
  0x61: 'APPEND',
  0x62: 'BUILD',
  0x63: 'GLOBAL',
  0x64: 'DICT',
  0x7d: 'EMPTY_DICT',
  0x65: 'APPENDS',
  0x67: 'GET',
  0x68: 'BINGET',
  0x69: 'INST',
  0x6a: 'LONG_BINGET',
  0x6c: 'LIST',
  0x5d: 'EMPTY_LIST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x71: 'BINPUT',
  0x72: 'LONG_BINPUT',
  0x73: 'SETITEM',
  0x74: 'TUPLE',
  0x29: 'EMPTY_TUPLE',
  0x75: 'SETITEMS',
  0x47: 'BINFLOAT',
  0x80: 'PROTO',
  0x81: 'NEWOBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x85: 'TUPLE1',
  0x86: 'TUPLE2',
  0x87: 'TUPLE3',
  0x88: 'NEWTRUE',
  0x89: 'NEWFALSE',
  0x8a: 'LONG1',
  0x8b: 'LONG4',
  0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE',
  0x8d: 'BINUNICODE8',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX',
  0x93: 'STACK_GLOBAL',
  0x94: 'MEMOIZE',
  0x95: 'FRAME',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

/**
 * Interpret a torch.save state-dict pickle. Returns name -> tensor reference, in file order.
 * `where` names the file (and record) in errors.
 */
export function readStateDictPickle(b: Uint8Array, where: string): Map<string, TensorRef> {
  const machine = new PickleMachine(b, where);
  return stateDict(machine.run(), (what) => machine.fail(what));
}

/** The stack machine: the bytes, the read position, the stack and the memo, and one method per kind of step. */
class PickleMachine {
  private pos = 0;
  private readonly view: DataView;
  private readonly stack: Slot[] = [];
  private readonly memo = new Map<number, Value>();

  constructor(
    private readonly b: Uint8Array,
    private readonly where: string,
  ) {
    this.view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  }

  fail(what: string, at = this.pos): never {
    throw inputError(
      `${this.where}: byte ${at}: ${what}. frugal reads only state dicts of tensors from PyTorch files; ` +
        'save one with torch.save(model.state_dict(), path) or convert the checkpoint to safetensors',
    );
  }

  /** Run opcodes up to STOP; returns the one value left. */
  run(): Value {
    while (true) {
      const at = this.pos;
      const op = this.b[this.need(1)];
      if (op === 0x2e) {
        // STOP
        const result = this.pop();
        if (this.stack.length !== 0) this.fail('values are left on the stack at STOP', at);
        return result;
      }
      this.step(op, at);
      // a state dict needs a few thousand slots; a forged pickle must not grow these without bound
      if (this.stack.length > MAX_SLOTS || this.memo.size > MAX_SLOTS)
        this.fail(`the pickle holds more than ${MAX_SLOTS} values at once`, at);
    }
  }

  /** One opcode other than STOP, read at byte `at`. */
  private step(op: number, at: number): void {
    const { b, view, stack, memo } = this;
    switch (op) {
      case 0x80: {
        if (b[this.need(1)] > 5) this.fail('unknown pickle protocol', at);
        break;
      } // PROTO
      case 0x95:
        this.need(8);
        break; // FRAME: a length hint only
      case 0x28:
        stack.push(MARK);
        break;
      case 0x29:
        stack.push(new Tuple([]));
        break;
      case 0x5d:
        stack.push(new List([]));
        break;
      case 0x7d:
        stack.push(new Dict());
        break;
      case 0x4e:
        stack.push(null);
        break;
      case 0x88:
        stack.push(true);
        break;
      case 0x89:
        stack.push(false);
        break;
      case 0x4a:
        stack.push(view.getInt32(this.need(4), true));
        break;
      case 0x4b:
        stack.push(b[this.need(1)]);
        break;
      case 0x4d:
        stack.push(view.getUint16(this.need(2), true));
        break;
      case 0x8a:
        stack.push(this.long1(at));
        break;
      case 0x47:
        stack.push(view.getFloat64(this.need(8), false));
        break; // BINFLOAT is big-endian
      case 0x58:
        stack.push(this.str(view.getUint32(this.need(4), true)));
        break;
      case 0x8c:
        stack.push(this.str(b[this.need(1)]));
        break;
      case 0x8d: {
        const n = u64(view, this.need(8));
        if (n > b.length) this.fail('a string longer than the pickle', at);
        stack.push(this.str(n));
        break;
      }
      case 0x71:
        memo.set(b[this.need(1)], this.top());
        break;
      case 0x72:
        memo.set(view.getUint32(this.need(4), true), this.top());
        break;
      case 0x94:
        memo.set(memo.size, this.top());
        break;
      case 0x68:
      case 0x6a: {
        const k = op === 0x68 ? b[this.need(1)] : view.getUint32(this.need(4), true);
        if (!memo.has(k)) this.fail(`memo entry ${k} was never stored`, at);
        stack.push(memo.get(k) as Value);
        break;
      }
      default:
        this.structure(op, at);
    }
  }

  /** Opcodes that build tuples, lists and dicts, name globals, or call them. */
  private structure(op: number, at: number): void {
    const stack = this.stack;
    switch (op) {
      case 0x74:
        stack.push(new Tuple(this.popMark()));
        break;
      case 0x85:
        stack.push(new Tuple([this.pop()]));
        break;
      case 0x86: {
        const y = this.pop(),
          x = this.pop();
        stack.push(new Tuple([x, y]));
        break;
      }
      case 0x87: {
        const z = this.pop(),
          y = this.pop(),
          x = this.pop();
        stack.push(new Tuple([x, y, z]));
        break;
      }
      case 0x61: {
        const v = this.pop();
        const l = this.top();
        if (!(l instanceof List)) this.fail('APPEND to a non-list', at);
        (l as List).items.push(v);
        break;
      }
      case 0x65: {
        const vs = this.popMark();
        const l = this.top();
        if (!(l instanceof List)) this.fail('APPENDS to a non-list', at);
        (l as List).items.push(...vs);
        break;
      }
      case 0x73: {
        const v = this.pop(),
          k = this.pop();
        this.setItems(this.top(), [k, v]);
        break;
      }
      case 0x75: {
        const kv = this.popMark();
        this.setItems(this.top(), kv);
        break;
      }
      case 0x63: {
        const m = this.line();
        const n = this.line();
        stack.push(this.global(m, n, at));
        break;
      }
      case 0x93: {
        const n = this.pop(),
          m = this.pop();
        if (typeof m !== 'string' || typeof n !== 'string') this.fail('STACK_GLOBAL needs two strings', at);
        stack.push(this.global(m as string, n as string, at));
        break;
      }
      case 0x51:
        stack.push(persistent(this.pop(), (w) => this.fail(w, at)));
        break;
      case 0x52: {
        const args = this.pop(),
          fn = this.pop();
        stack.push(reduce(fn, args, (w) => this.fail(w, at)));
        break;
      }
      case 0x62: {
        // BUILD: only the attribute dict torch attaches to a state dict (_metadata), which is ignored
        const state = this.pop();
        if (!(this.top() instanceof Dict) || !(state instanceof Dict || state === null))
          this.fail('BUILD on something other than a state dict', at);
        break;
      }
      default:
        this.fail(`opcode 0x${op.toString(16).padStart(2, '0')} (${OPNAMES[op] ?? 'unknown'}) is outside the tensor-storage subset`, at);
    }
  }

  private need(n: number): number {
    if (this.pos + n > this.b.length) this.fail(`the pickle ends inside an opcode (needs ${n} more bytes)`);
    const at = this.pos;
    this.pos += n;
    return at;
  }

  private str(n: number): string {
    const at = this.need(n);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.b.subarray(at, at + n));
    } catch {
      return this.fail('a string is not valid UTF-8', at);
    }
  }

  private line(): string {
    const end = this.b.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 256) this.fail('a GLOBAL name is not terminated');
    const s = new TextDecoder().decode(this.b.subarray(this.pos, end));
    this.pos = end + 1;
    return s;
  }

  /** LONG1: little-endian two's complement of n bytes. */
  private long1(at: number): number {
    const n = this.b[this.need(1)];
    if (n > 8) this.fail(`an integer of ${n} bytes is too large`, at);
    const s = this.need(n);
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(this.b[s + i]);
    if (n > 0 && this.b[s + n - 1] & 0x80) v -= 1n << BigInt(8 * n);
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) this.fail('an integer is out of range', at);
    return Number(v);
  }

  private pop(): Value {
    const v = this.stack.pop();
    if (v === undefined || v === MARK) this.fail('the pickle pops from an empty stack');
    return v as Value;
  }

  private popMark(): Value[] {
    const i = this.stack.lastIndexOf(MARK);
    if (i < 0) this.fail('no MARK before a collection opcode');
    const items = this.stack.splice(i) as Slot[];
    return items.slice(1) as Value[];
  }

  private top(): Value {
    const v = this.stack[this.stack.length - 1];
    if (v === undefined || v === MARK) this.fail('the stack is empty');
    return v as Value;
  }

  private setItems(d: Value, kv: Value[]): void {
    if (!(d instanceof Dict)) this.fail('SETITEM(S) on something that is not a dict');
    if (kv.length % 2 !== 0) this.fail('SETITEMS with an odd number of items');
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i];
      if (typeof k !== 'string' && typeof k !== 'number') this.fail('a dict key that is not a string or a number');
      (d as Dict).map.set(k as string | number, kv[i + 1]);
    }
  }

  private global(module: string, name: string, at: number): Global {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) this.fail(`global '${full}' is not allowed (a pickle that names it could run code)`, at);
    return new Global(module, name);
  }
}

function u64(v: DataView, at: number): number {
  const x = v.getBigUint64(at, true);
  return x > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(x);
}

const isInt = (v: Value): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** BINPERSID: ('storage', torch.XStorage, key, location, numel) -> a storage reference. */
function persistent(pid: Value, fail: (what: string) => never): StorageRef {
  if (!(pid instanceof Tuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') fail('a persistent id that is not a torch storage');
  const [, type, key, location, numel] = (pid as Tuple).items;
  if (!(type instanceof Global) || type.module !== 'torch' || !Object.hasOwn(STORAGE_DTYPES, type.name)) fail('a storage of unknown type');
  if (typeof key !== 'string' || !/^[0-9A-Za-z_.-]{1,64}$/.test(key)) fail('a storage key that is not a plain name');
  if (typeof location !== 'string' || !isInt(numel as Value)) fail('a storage without a location or element count');
  return {
    kind: 'storage',
    dtype: STORAGE_DTYPES[(type as Global).name] as string,
    key: key as string,
    location: location as string,
    numel: numel as number,
  };
}

/** REDUCE on an allowed tag: build the description the call would have returned. */
function reduce(fn: Value, args: Value, fail: (what: string) => never): Value {
  if (!(fn instanceof Global) || !(args instanceof Tuple)) fail('REDUCE of something that is not an allowed global');
  const name = `${(fn as Global).module}.${(fn as Global).name}`;
  const a = (args as Tuple).items;
  if (name === 'collections.OrderedDict') {
    if (a.length !== 0) fail('OrderedDict called with arguments');
    return new Dict();
  }
  if (name === 'torch._utils._rebuild_parameter') {
    if (a.length !== 3 || !isTensor(a[0])) fail('_rebuild_parameter without a tensor');
    return a[0] as TensorRef;
  }
  if (name === 'torch._utils._rebuild_tensor_v2') {
    if (a.length < 6 || a.length > 7) fail('_rebuild_tensor_v2 with the wrong number of arguments');
    const [storage, offset, size, stride] = a;
    if (!(storage !== null && typeof storage === 'object' && 'kind' in storage && storage.kind === 'storage'))
      fail('_rebuild_tensor_v2 without a storage');
    const ints = (t: Value): number[] => {
      if (!(t instanceof Tuple) || t.items.length > 16 || !t.items.every(isInt))
        fail('a tensor size or stride that is not a tuple of integers');
      return (t as Tuple).items as number[];
    };
    if (!isInt(offset)) fail('a tensor with a bad storage offset');
    return { kind: 'tensor', storage: storage as StorageRef, offset: offset as number, shape: ints(size), stride: ints(stride) };
  }
  return fail(`calling '${name}' is not allowed`);
}

function isTensor(v: Value): v is TensorRef {
  return v !== null && typeof v === 'object' && 'kind' in v && v.kind === 'tensor';
}

function stateDict(v: Value, fail: (what: string) => never): Map<string, TensorRef> {
  if (!(v instanceof Dict)) return fail('the pickle does not hold a dict');
  const out = new Map<string, TensorRef>();
  for (const [k, t] of (v as Dict).map) {
    if (typeof k !== 'string') fail(`a state-dict key ${String(k)} is not a string`);
    if (!isTensor(t)) fail(`state-dict entry '${String(k)}' is not a tensor`);
    out.set(k as string, t as TensorRef);
  }
  return out;
}

// --- writing -------------------------------------------------------------------------------------

/** A tensor to pickle: it lives at element `offset` of storage `key` (shared keys share storage). */
export interface PickleTensor {
  name: string;
  storageClass: string;
  key: string;
  numel: number;
  offset: number;
  shape: number[];
}

/**
 * The state-dict pickle torch.save writes (protocol 2): an OrderedDict of name ->
 * _rebuild_tensor_v2(persistent storage, offset, size, contiguous stride, False, OrderedDict()).
 */
export function writeStateDictPickle(tensors: PickleTensor[]): Uint8Array {
  const out: number[] = [0x80, 0x02];
  const bytes = (...xs: number[]) => {
    for (const x of xs) out.push(x);
  };
  const text = (s: string) => {
    for (const c of new TextEncoder().encode(s)) out.push(c);
  };
  const glob = (m: string, n: string) => {
    bytes(0x63);
    text(`${m}\n${n}\n`);
  };
  const uni = (s: string) => {
    const e = new TextEncoder().encode(s);
    bytes(0x58, ...u32(e.length));
    for (const c of e) out.push(c);
  };
  const int = (n: number) => {
    if (n < 256) bytes(0x4b, n);
    else if (n < 65536) bytes(0x4d, n & 0xff, n >> 8);
    else if (n < 2 ** 31) bytes(0x4a, ...u32(n));
    else {
      // LONG1, 8 bytes, little-endian two's complement (n is a non-negative safe integer)
      const v = new DataView(new ArrayBuffer(8));
      v.setBigUint64(0, BigInt(n), true);
      bytes(0x8a, 8, ...new Uint8Array(v.buffer));
    }
  };
  const tuple = (xs: number[]) => {
    if (xs.length === 0) {
      bytes(0x29);
      return;
    }
    if (xs.length <= 3) {
      xs.forEach(int);
      bytes([0x85, 0x86, 0x87][xs.length - 1]);
      return;
    }
    bytes(0x28);
    xs.forEach(int);
    bytes(0x74);
  };
  glob('collections', 'OrderedDict');
  bytes(0x29, 0x52);
  for (let i = 0; i < tensors.length; i += 1000) {
    // pickle batches SETITEMS by 1000
    bytes(0x28);
    for (const t of tensors.slice(i, i + 1000)) {
      uni(t.name);
      glob('torch._utils', '_rebuild_tensor_v2');
      bytes(0x28); // args
      bytes(0x28);
      uni('storage');
      glob('torch', t.storageClass);
      uni(t.key);
      uni('cpu');
      int(t.numel);
      bytes(0x74, 0x51);
      int(t.offset);
      tuple(t.shape);
      tuple(contiguousStride(t.shape));
      bytes(0x89);
      glob('collections', 'OrderedDict');
      bytes(0x29, 0x52);
      bytes(0x74, 0x52);
    }
    bytes(0x75);
  }
  bytes(0x2e);
  return Uint8Array.from(out);
}

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/** Row-major strides of a shape (in elements). */
export function contiguousStride(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}
