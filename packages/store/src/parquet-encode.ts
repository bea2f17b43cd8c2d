// Parquet bytes of one file, over hyparquet-writer (no file system: the Node and the browser Parquet sinks both encode here).
import { ByteWriter, parquetWrite } from 'hyparquet-writer';
import { InrunError } from './errors.js';

/** One column of a Parquet file: typed values, nulls allowed where `nullable`. */
export interface ParquetColumn {
  readonly name: string;
  readonly type: 'INT32' | 'FLOAT' | 'DOUBLE' | 'STRING';
  readonly data: ArrayLike<number | string | null> & Iterable<number | string | null>;
  readonly nullable?: boolean;
  /** Min/max statistics (they let DuckDB skip row groups when filtering on this column). @defaultValue false */
  readonly statistics?: boolean;
}

/**
 * A Parquet file's bytes, written by hyparquet-writer (measured faster than parquetjs-lite,
 * docs/benchmarks.md) in the form both DuckDB and parquetjs-lite's reader accept: PLAIN encodings
 * (parquetjs-lite reads neither RLE_DICTIONARY nor the delta encodings) and file-format version 1 in
 * the footer. hyparquet-writer always writes 2 there; the field only names the format generation
 * (Arrow writes 1 beside v2 data pages too), so it is patched after checking the exact bytes.
 */
export function encodeParquet(columns: readonly ParquetColumn[], metadata: Record<string, string> = {}): Uint8Array {
  const writer = new ByteWriter();
  const pending: unknown = parquetWrite({
    writer,
    columnData: columns.map((c) => ({
      name: c.name,
      data: c.data as never,
      type: c.type,
      nullable: c.nullable ?? false,
      encoding: 'PLAIN',
      statistics: c.statistics ?? false,
    })),
    kvMetadata: Object.entries(metadata).map(([key, value]) => ({ key, value })),
    createdBy: 'inrun',
  });
  // In memory with the built-in Snappy codec the write is synchronous; never leave it half done.
  if (pending instanceof Promise) throw new InrunError('hyparquet-writer returned a promise for an in-memory write', { code: 'internal' });
  const bytes = new Uint8Array(writer.getBuffer());
  const footer = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(bytes.length - 8, true);
  const at = bytes.length - 8 - footer;
  // FileMetaData starts with field 1 (version, i32): header 0x15, then zig-zag varint 2 = 0x04.
  if (bytes[at] !== 0x15 || bytes[at + 1] !== 0x04) throw new InrunError('unexpected Parquet footer layout from hyparquet-writer', { code: 'internal' });
  bytes[at + 1] = 0x02;
  return bytes;
}
