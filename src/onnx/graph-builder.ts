/**
 * A small ONNX graph builder: named inputs, initializers, nodes and outputs, serialised to a
 * ModelProto with the `onnx-proto` definitions (ONNX's own onnx.proto compiled for protobufjs).
 *
 * Models whose initializers exceed the 2 GB protobuf limit (the 1.3B model is 5.7 GB in float32)
 * are written with ONNX external data: `writeModel` puts `model.onnx` and `weights.bin` in a
 * directory and the session is created from the path.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { float32ToFloat16 } from './float16.js';

const { onnx } = onnxProto;

export type DataType = 'float32' | 'float16' | 'int64' | 'int32' | 'uint8' | 'bool';
/** A fixed size or a symbolic (dynamic) dimension name. */
export type Dim = number | string;

const ELEM_TYPE: Record<DataType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  uint8: onnx.TensorProto.DataType.UINT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

export const OPSET = 17;
export const MS_DOMAIN = 'com.microsoft';

/** Wrappers that fix an attribute's ONNX type where a JS number would be ambiguous. */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export class FloatsAttr {
  constructor(readonly value: number[]) {}
}
export const float = (value: number): FloatAttr => new FloatAttr(value);
export const floats = (value: number[]): FloatsAttr => new FloatsAttr(value);
/** Integers are INT / INTS, other numbers FLOAT, strings STRING; wrap with float()/floats() to force floats. */
export type AttrValue = number | number[] | string | FloatAttr | FloatsAttr;
export type Attrs = Record<string, AttrValue>;

export interface NodeOptions {
  domain?: string;
  /** Name of the (first) output tensor; default: a fresh name from the op type. */
  name?: string;
  /** Number of outputs (names derived from `name`), or explicit output names ('' = omitted optional). */
  outputs?: number | string[];
}

type InitData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array;

interface Initializer {
  name: string;
  type: DataType;
  dims: number[];
  data: InitData;
}

function attribute(name: string, value: AttrValue): onnxProto.onnx.IAttributeProto {
  const A = onnx.AttributeProto.AttributeType;
  if (value instanceof FloatAttr) return { name, type: A.FLOAT, f: value.value };
  if (value instanceof FloatsAttr) return { name, type: A.FLOATS, floats: value.value };
  if (typeof value === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) {
    if (value.every(Number.isInteger)) return { name, type: A.INTS, ints: value };
    return { name, type: A.FLOATS, floats: value };
  }
  if (Number.isInteger(value)) return { name, type: A.INT, i: value };
  return { name, type: A.FLOAT, f: value };
}

function valueInfo(name: string, type: DataType, dims: Dim[]): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: ELEM_TYPE[type],
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function bytesOf(data: InitData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export class GraphBuilder {
  private readonly nodes: onnxProto.onnx.INodeProto[] = [];
  private readonly inputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly outputs: onnxProto.onnx.IValueInfoProto[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly names = new Set<string>();
  private readonly domains = new Set<string>();
  private counter = 0;

  constructor(readonly graphName: string) {}

  private claim(name: string): string {
    if (this.names.has(name)) throw new Error(`graph ${this.graphName}: tensor name '${name}' used twice`);
    this.names.add(name);
    return name;
  }

  /** An unused tensor name `<prefix>_<n>` (not yet claimed: pass it as a node output). */
  unusedName(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.names.has(name));
    return name;
  }

  /** Claims a fresh tensor name `<prefix>_<n>` (for node outputs). */
  fresh(prefix: string): string {
    return this.claim(this.unusedName(prefix));
  }

  input(name: string, type: DataType, dims: Dim[]): string {
    this.inputs.push(valueInfo(this.claim(name), type, dims));
    return name;
  }

  /** Marks an existing tensor as a graph output (renaming it through an Identity when `as` differs). */
  output(tensor: string, type: DataType, dims: Dim[], as: string = tensor): string {
    if (as !== tensor) this.op('Identity', [tensor], {}, { name: as });
    this.outputs.push(valueInfo(as, type, dims));
    return as;
  }

  initializer(name: string, type: DataType, dims: number[], data: InitData): string {
    const expected = dims.reduce((a, b) => a * b, 1);
    if (data.length !== expected) {
      throw new Error(`graph ${this.graphName}: initializer '${name}' has ${data.length} values, dims [${dims}] need ${expected}`);
    }
    this.initializers.push({ name: this.claim(name), type, dims, data });
    return name;
  }

  /** A float initializer stored in `type` (float32 data converted to float16 when asked). */
  floatInitializer(name: string, type: 'float32' | 'float16', dims: number[], data: Float32Array): string {
    return this.initializer(name, type, dims, type === 'float16' ? float32ToFloat16(data) : data);
  }

  /** Small int64 constant (shapes, axes, indices). */
  int64s(values: number[], name?: string): string {
    return this.initializer(name ?? this.unusedName('const_i64'), 'int64', [values.length], BigInt64Array.from(values.map(BigInt)));
  }

  /** Scalar or 1-D float constant in `type`. */
  floatConst(values: number[], type: 'float32' | 'float16', dims: number[] = [values.length], name?: string): string {
    return this.floatInitializer(name ?? this.unusedName('const_f'), type, dims, Float32Array.from(values));
  }

  /** Adds a node; returns its output names (the first is the usual result). */
  node(opType: string, inputs: string[], attrs: Attrs = {}, options: NodeOptions = {}): string[] {
    const domain = options.domain ?? '';
    if (domain !== '') this.domains.add(domain);
    let outputs: string[];
    if (Array.isArray(options.outputs)) {
      outputs = options.outputs.map((o) => (o === '' ? '' : this.claim(o)));
    } else {
      const count = options.outputs ?? 1;
      const base = options.name ?? this.fresh(opType);
      if (options.name !== undefined) this.claim(base);
      outputs = [base];
      for (let i = 1; i < count; i++) outputs.push(this.claim(`${base}:${i}`));
    }
    this.nodes.push({
      opType,
      domain,
      name: `${opType}:${outputs.find((o) => o !== '') ?? this.counter++}`,
      input: inputs,
      output: outputs,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return outputs;
  }

  /** Adds a single-output node and returns its output name. */
  op(opType: string, inputs: string[], attrs: Attrs = {}, options: NodeOptions = {}): string {
    return this.node(opType, inputs, attrs, options)[0];
  }

  initializerBytes(): number {
    return this.initializers.reduce((n, i) => n + i.data.byteLength, 0);
  }

  private modelProto(tensor: (init: Initializer) => onnxProto.onnx.ITensorProto): onnxProto.onnx.ModelProto {
    const opsetImport = [{ domain: '', version: OPSET }];
    for (const d of this.domains) opsetImport.push({ domain: d, version: 1 });
    return onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'sinkstream',
      opsetImport,
      graph: {
        name: this.graphName,
        node: this.nodes,
        input: this.inputs,
        output: this.outputs,
        initializer: this.initializers.map(tensor),
      },
    });
  }

  /** The whole model in one buffer (initializers inline); only for models well under 2 GB. */
  serialize(): Uint8Array {
    if (this.initializerBytes() > 1.8e9) {
      throw new Error(`graph ${this.graphName}: ${this.initializerBytes()} bytes of initializers; use writeModel (external data)`);
    }
    const proto = this.modelProto((init) => ({
      name: init.name,
      dataType: ELEM_TYPE[init.type],
      dims: init.dims,
      rawData: bytesOf(init.data),
    }));
    return onnx.ModelProto.encode(proto).finish();
  }

  /**
   * Writes `<dir>/model.onnx` with every initializer of at least `externalMinBytes` bytes in
   * `<dir>/weights.bin` (ONNX external data, page-aligned offsets); returns the model's path.
   */
  writeModel(dir: string, externalMinBytes = 1024): string {
    mkdirSync(dir, { recursive: true });
    const weightsFile = 'weights.bin';
    const fd = openSync(path.join(dir, weightsFile), 'w');
    let offset = 0;
    const placed = new Map<string, { offset: number; length: number }>();
    try {
      for (const init of this.initializers) {
        if (init.data.byteLength < externalMinBytes) continue;
        const pad = (4096 - (offset % 4096)) % 4096;
        if (pad > 0) writeSync(fd, new Uint8Array(pad));
        offset += pad;
        writeSync(fd, bytesOf(init.data));
        placed.set(init.name, { offset, length: init.data.byteLength });
        offset += init.data.byteLength;
      }
    } finally {
      closeSync(fd);
    }
    const proto = this.modelProto((init) => {
      const where = placed.get(init.name);
      const base = { name: init.name, dataType: ELEM_TYPE[init.type], dims: init.dims };
      if (where === undefined) return { ...base, rawData: bytesOf(init.data) };
      return {
        ...base,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: weightsFile },
          { key: 'offset', value: String(where.offset) },
          { key: 'length', value: String(where.length) },
        ],
      };
    });
    const modelPath = path.join(dir, 'model.onnx');
    const fdModel = openSync(modelPath, 'w');
    try {
      writeSync(fdModel, onnx.ModelProto.encode(proto).finish());
    } finally {
      closeSync(fdModel);
    }
    return modelPath;
  }
}
