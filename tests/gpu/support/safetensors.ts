/**
 * An independent reader of the safetensors layout (as the Rust and Python
 * implementations read it): u64 little-endian header size, JSON header,
 * then the byte buffer that `data_offsets` index into.
 */
export type TensorInfo = { dtype: string; shape: number[]; data_offsets: [number, number] };
export type Safetensors = {
  headerSize: number;
  metadata: Record<string, string> | undefined;
  tensors: Record<string, TensorInfo>;
  /** Bytes after the header. */
  data: Uint8Array;
};

const DTYPE_BYTES: Record<string, number> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };

export function readSafetensors(bytes: Uint8Array): Safetensors {
  if (bytes.length < 8) throw new Error("File shorter than the 8-byte header size");
  const headerSize = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerSize > bytes.length - 8) throw new Error(`Header size ${headerSize} exceeds the file`);
  const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerSize));
  if (!text.startsWith("{")) throw new Error("Header does not start with '{'");
  const { __metadata__: metadata, ...tensors } = JSON.parse(text) as Record<string, unknown>;
  return {
    headerSize,
    metadata: metadata as Record<string, string> | undefined,
    tensors: tensors as Record<string, TensorInfo>,
    data: bytes.subarray(8 + headerSize),
  };
}

/** Bytes a tensor must occupy given its dtype and shape. */
export function expectedTensorBytes(t: TensorInfo): number {
  const per = DTYPE_BYTES[t.dtype];
  if (per === undefined) throw new Error(`Unknown dtype ${t.dtype}`);
  return t.shape.reduce((a, b) => a * b, 1) * per;
}
