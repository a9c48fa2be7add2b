/** The reference device side of the protocol: board state + dispatcher, stream server, test plumbing. */
export { MockBoard, DEFAULT_MAX_PAYLOAD, MIN_PROTOCOL, SELF_TESTS, type MockBoardOptions, type BoardCounters } from './board.ts';
export { serveBoard, type ServeOptions, type ServeStats, type BoardServer } from './serve.ts';
export { duplexPair } from './duplex-pair.ts';
export { openPtyPair, type PtyPair, type PtyOptions } from './pty.ts';
