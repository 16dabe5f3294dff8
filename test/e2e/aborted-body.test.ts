/**
 * A client that closes its connection halfway through a request body (load generators do at the
 * end of a run) is the client's doing: a 400, not an internal error in the server's log.
 */
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { startTestServer, type TestServer } from '../support/server';

let server: TestServer;
let http: Server;
const logged: unknown[] = [];
beforeAll(async () => {
  server = await startTestServer({ logError: (err) => logged.push(err) });
  http = createServer(server.continuum.app);
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  await new Promise((resolve) => http.close(resolve));
  await server.close();
});

test('a body cut short by the client is not logged as a server error', async () => {
  const { port } = http.address() as AddressInfo;
  const token = await server.token('system/*.cruds');
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', resolve));
  socket.write(
    `POST /Patient HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/fhir+json\r\nContent-Length: 1000\r\n\r\n{"resourceType":"Pat`,
  );
  await new Promise((resolve) => setTimeout(resolve, 100));
  socket.destroy();
  // The server notices the closed connection and finishes the request.
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(logged).toEqual([]);
  // And it still serves.
  const ok = await server.request().post('/Patient').set('content-type', 'application/fhir+json').send({ resourceType: 'Patient' });
  expect(ok.status).toBe(201);
  expect(logged).toEqual([]);
});
