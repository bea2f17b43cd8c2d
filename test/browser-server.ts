// A tiny static server on 127.0.0.1 for browser tests (WebGPU and OPFS need a real origin, not file://).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What a path serves: its body and content type. */
export interface Served {
  readonly body: string | Uint8Array;
  readonly type: string;
}

export interface TestServer {
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Serves `files` (path -> content) on an ephemeral port of 127.0.0.1. Pages are cross-origin isolated
 * (COOP/COEP), which SQLite's OPFS build needs for SharedArrayBuffer.
 */
export async function serve(files: Record<string, Served>): Promise<TestServer> {
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const file = files[path];
    if (file === undefined && path === '/favicon.ico') {
      // Browsers ask for one unprompted; a 404 would show as a console error.
      res.writeHead(204).end();
      return;
    }
    if (file === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': file.type,
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cache-control': 'no-store',
    });
    res.end(file.body);
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((done, fail) => server.close((e) => (e ? fail(e) : done()))),
  };
}

/** A page that loads one module script. */
export function pageWith(script: string): Served {
  return { type: 'text/html', body: `<!doctype html><meta charset="utf-8"><title>inrun test</title><script type="module" src="${script}"></script>` };
}

export const js = (body: string): Served => ({ type: 'text/javascript', body });
