// The part of parquetjs-lite (no published types) that the tests and benchmarks use.
declare module 'parquetjs-lite' {
  interface Cursor {
    next(): Promise<Record<string, unknown> | null>;
  }
  class ParquetReader {
    static openFile(path: string): Promise<ParquetReader>;
    getCursor(columns?: string[]): Cursor;
    getRowCount(): number;
    close(): Promise<void>;
  }
  class ParquetSchema {
    constructor(fields: Record<string, { type: string; optional?: boolean; compression?: string }>);
  }
  class ParquetWriter {
    static openFile(schema: ParquetSchema, path: string, options?: Record<string, unknown>): Promise<ParquetWriter>;
    appendRow(row: Record<string, unknown>): Promise<void>;
    setRowGroupSize(rows: number): void;
    close(): Promise<void>;
  }
  const parquet: { ParquetReader: typeof ParquetReader; ParquetSchema: typeof ParquetSchema; ParquetWriter: typeof ParquetWriter };
  export default parquet;
}
