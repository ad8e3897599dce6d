/**
 * A pickle reader for the data a checkpoint's `data.pkl` holds (Python's pickle protocols 2-5, the
 * opcodes that dicts, lists, tuples, numbers, strings, bytes and reduced objects use). Nothing is
 * executed: a GLOBAL is looked up through `resolveGlobal`, which returns a `PickleCallable` the
 * reader may call on REDUCE / NEWOBJ, a plain value, or undefined — then the reader keeps an opaque
 * `PickleGlobal` and reduces it to an opaque `PickleObject`, so unrelated entries (an optimizer's
 * numpy scalars, a config object) do not stop a state dict from loading.
 * Dicts are read as Map (keys keep their types and order), lists and tuples as arrays.
 */

export class PickleCallable {
  constructor(
    readonly name: string,
    readonly call: (args: unknown[]) => unknown,
  ) {}
}

export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get fullName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** An object of a class the reader does not know, with the arguments and state it was pickled with. */
export class PickleObject {
  state: unknown = undefined;
  constructor(
    readonly type: unknown,
    readonly args: unknown[],
  ) {}
}

export interface UnpickleOptions {
  resolveGlobal(module: string, name: string): unknown;
  persistentLoad(pid: unknown): unknown;
}

export class PickleError extends Error {}

const MARK = Symbol('mark');

function opName(code: number): string {
  const printable = code >= 0x20 && code < 0x7f ? ` '${String.fromCharCode(code)}'` : '';
  return `0x${code.toString(16).padStart(2, '0')}${printable}`;
}

/** Reads one pickle (up to STOP) from `data`. */
export function unpickle(data: Uint8Array, options: UnpickleOptions): unknown {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const decoder = new TextDecoder('utf-8');
  const latin1 = new TextDecoder('latin1');
  let pos = 0;
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const need = (n: number): void => {
    if (pos + n > data.length) throw new PickleError(`the pickle ends inside an opcode's argument at byte ${pos} (truncated)`);
  };
  const u8 = (): number => { need(1); return data[pos++]; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new PickleError(`a length of ${v} bytes is out of range`);
    return Number(v);
  };
  const bytes = (n: number): Uint8Array => { need(n); const b = data.subarray(pos, pos + n); pos += n; return b; };
  const line = (): string => {
    const end = data.indexOf(0x0a, pos);
    if (end < 0) throw new PickleError(`the pickle ends inside a text line at byte ${pos} (truncated)`);
    const s = latin1.decode(data.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw new PickleError(`stack underflow at byte ${pos}`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw new PickleError(`stack underflow at byte ${pos}`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const previous = marks.pop();
    if (!previous) throw new PickleError(`no MARK to pop to at byte ${pos}`);
    stack = previous;
    return items;
  };
  const longFrom = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const global = (module: string, name: string): unknown => {
    const resolved = options.resolveGlobal(module, name);
    return resolved === undefined ? new PickleGlobal(module, name) : resolved;
  };
  const apply = (fn: unknown, args: unknown): unknown => {
    if (!Array.isArray(args)) throw new PickleError(`REDUCE arguments are not a tuple at byte ${pos}`);
    if (fn instanceof PickleCallable) return fn.call(args);
    return new PickleObject(fn, args);
  };
  const setItems = (dict: unknown, items: unknown[]): void => {
    if (dict instanceof Map) {
      for (let i = 0; i + 1 < items.length; i += 2) dict.set(items[i], items[i + 1]);
    } else if (dict instanceof PickleObject) {
      // Items of an unknown dict subclass: kept as its state, unused.
    } else {
      throw new PickleError(`SETITEM on a non-dict at byte ${pos}`);
    }
  };
  const appendItems = (list: unknown, items: unknown[]): void => {
    if (Array.isArray(list)) list.push(...items);
    else if (!(list instanceof PickleObject)) throw new PickleError(`APPEND on a non-list at byte ${pos}`);
  };

  for (;;) {
    if (pos >= data.length) throw new PickleError(`the pickle ends at byte ${pos} without a STOP opcode (truncated)`);
    const at = pos;
    const op = data[pos++];
    switch (op) {
      case 0x80: u8(); break; // PROTO
      case 0x95: u64(); break; // FRAME (protocol 4): framing is transparent here
      case 0x2e: { // STOP '.'
        return pop();
      }
      case 0x28: marks.push(stack); stack = []; break; // MARK '('
      case 0x30: pop(); break; // POP '0'
      case 0x31: popMark(); break; // POP_MARK '1'
      case 0x32: stack.push(top()); break; // DUP '2'
      case 0x4e: stack.push(null); break; // NONE 'N'
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4a: stack.push(i32()); break; // BININT 'J'
      case 0x4b: stack.push(u8()); break; // BININT1 'K'
      case 0x4d: stack.push(u16()); break; // BININT2 'M'
      case 0x8a: stack.push(longFrom(bytes(u8()))); break; // LONG1
      case 0x8b: stack.push(longFrom(bytes(u32()))); break; // LONG4
      case 0x49: { // INT 'I' (text; "00" / "01" are False / True)
        const s = line();
        stack.push(s === '00' ? false : s === '01' ? true : Number.parseInt(s, 10));
        break;
      }
      case 0x4c: stack.push(Number.parseInt(line().replace(/L$/, ''), 10)); break; // LONG 'L'
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT 'G'
      case 0x46: stack.push(Number.parseFloat(line())); break; // FLOAT 'F'
      case 0x58: stack.push(decoder.decode(bytes(u32()))); break; // BINUNICODE 'X'
      case 0x8c: stack.push(decoder.decode(bytes(u8()))); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(decoder.decode(bytes(u64()))); break; // BINUNICODE8
      case 0x54: stack.push(latin1.decode(bytes(u32()))); break; // BINSTRING 'T'
      case 0x55: stack.push(latin1.decode(bytes(u8()))); break; // SHORT_BINSTRING 'U'
      case 0x42: stack.push(bytes(u32()).slice()); break; // BINBYTES 'B'
      case 0x43: stack.push(bytes(u8()).slice()); break; // SHORT_BINBYTES 'C'
      case 0x8e: stack.push(bytes(u64()).slice()); break; // BINBYTES8
      case 0x96: stack.push(bytes(u64()).slice()); break; // BYTEARRAY8
      case 0x7d: stack.push(new Map()); break; // EMPTY_DICT '}'
      case 0x5d: stack.push([]); break; // EMPTY_LIST ']'
      case 0x29: stack.push([]); break; // EMPTY_TUPLE ')'
      case 0x8f: stack.push(new Set()); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const set = top();
        if (set instanceof Set) for (const item of items) set.add(item);
        break;
      }
      case 0x91: { const items = popMark(); stack.push(new Set(items)); break; } // FROZENSET
      case 0x74: { const items = popMark(); stack.push(items); break; } // TUPLE 't' (popMark replaces `stack`)
      case 0x85: stack.push([pop()]); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push([a, b]); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push([a, b, c]); break; } // TUPLE3
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST 'l'
      case 0x64: { // DICT 'd'
        const items = popMark();
        const dict = new Map();
        setItems(dict, items);
        stack.push(dict);
        break;
      }
      case 0x61: { const item = pop(); appendItems(top(), [item]); break; } // APPEND 'a'
      case 0x65: { const items = popMark(); appendItems(top(), items); break; } // APPENDS 'e'
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM 's'
      case 0x75: { const items = popMark(); setItems(top(), items); break; } // SETITEMS 'u'
      case 0x71: memo.set(u8(), top()); break; // BINPUT 'q'
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT 'r'
      case 0x70: memo.set(Number.parseInt(line(), 10), top()); break; // PUT 'p'
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: case 0x6a: case 0x67: { // BINGET 'h', LONG_BINGET 'j', GET 'g'
        const index = op === 0x68 ? u8() : op === 0x6a ? u32() : Number.parseInt(line(), 10);
        if (!memo.has(index)) throw new PickleError(`memo entry ${index} is missing at byte ${at}`);
        stack.push(memo.get(index));
        break;
      }
      case 0x63: { // GLOBAL 'c'
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw new PickleError(`STACK_GLOBAL without two strings at byte ${at}`);
        stack.push(global(module, name));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); stack.push(apply(fn, args)); break; } // REDUCE 'R'
      case 0x81: { const args = pop(); const cls = pop(); stack.push(apply(cls, args)); break; } // NEWOBJ
      case 0x92: { pop(); const args = pop(); const cls = pop(); stack.push(apply(cls, args)); break; } // NEWOBJ_EX
      case 0x62: { // BUILD 'b'
        const state = pop();
        const obj = top();
        // A dict's state is attributes (an OrderedDict's `_metadata`), never items; a tensor's is hooks.
        if (obj instanceof PickleObject) obj.state = state;
        break;
      }
      case 0x51: stack.push(options.persistentLoad(pop())); break; // BINPERSID 'Q'
      case 0x50: stack.push(options.persistentLoad(line())); break; // PERSID 'P'
      default:
        throw new PickleError(`unsupported pickle opcode ${opName(op)} at byte ${at}`);
    }
  }
}
