/** The wire protocol: framing, CRC, MessagePack payloads, message schemas, limits. PROTOCOL.md is the spec. */
export * from './messages.ts';
export { ProtocolError, type ProtocolErrorCode } from './errors.ts';
export { cobsEncode, cobsDecode, cobsMaxEncodedLength } from './cobs.ts';
export { crc32c, crc32cTable } from './crc32c.ts';
export { packPayload, unpackPayload } from './msgpack.ts';
export {
  HEADER_BYTES,
  CRC_BYTES,
  MAX_PAYLOAD,
  encodeFrame,
  encodeRawFrame,
  encodeRequest,
  encodeResponse,
  encodeEvent,
  encodeError,
  errorCodeName,
  type FrameHeader,
  type EncodeOptions,
} from './frame.ts';
export { FrameDecoder, MAX_FRAME_BYTES, type DecodeEvent, type DecoderStats, type FrameDecoderOptions } from './decoder.ts';
export {
  requestSchemas,
  responseSchemas,
  eventSchemas,
  ErrorResponseSchema,
  LayerInfoSchema,
  schemaFor,
  typeName,
  toWire,
  fromWire,
  checkMessage,
  type SchemaEntry,
  type MessageKind,
} from './schemas.ts';
export {
  maxCodesPerChunk,
  maxBatchFor,
  maxWireBytes,
  weightsWritePayloadBytes,
  runRequestPayloadBytes,
  runResponsePayloadBytes,
  weightsPatchPayloadBytes,
  maxPatchDataBytes,
  runPackedRequestPayloadBytes,
  runPackedResponseMaxBytes,
  maxPackedBatchFor,
} from './limits.ts';
export { encodeRecords, decodeRecords, writeRecord, recordSize, maxRecordBytes, RecordMode, BIT_PACKED_FEATURE, packedBits } from './spike-records.ts';
export { encodePatch, decodePatch, type PatchFrame } from './weight-patch.ts';
export { encodeEdit, encodeFills, decodeEdit, editDataBytes, stepCode, nearCode, EditMode, WEIGHTS_EDIT_FEATURE } from './weight-edit.ts';
export { ByteWriter, ByteReader, varintBytes } from './varint.ts';
export { toJsonForm, fromJsonForm, toHex, fromHex, type JsonValue } from './json-form.ts';
