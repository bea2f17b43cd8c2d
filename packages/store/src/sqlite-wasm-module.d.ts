// The one export of '@sqlite.org/sqlite-wasm' (3.41 ships no types); sqlite-wasm.ts narrows what it returns.
declare module '@sqlite.org/sqlite-wasm' {
  const sqlite3InitModule: (options?: { print?: (...a: unknown[]) => void; printErr?: (...a: unknown[]) => void }) => Promise<unknown>;
  export default sqlite3InitModule;
}
