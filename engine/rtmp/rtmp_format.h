// rtmp_format.h: the RTMP wire-format constants shared by every reader and writer in
// engine/rtmp/. The layouts they describe are those of Adobe's "RTMP Specification 1.0"
// (section 5: handshake, chunk stream, protocol control messages; section 7: commands)
// and the FLV tag layout of "Video File Format Specification 10" (audio/video tag
// headers), with the Enhanced RTMP additions noted where they apply.

#ifndef URINGEST_ENGINE_RTMP_RTMP_FORMAT_H_
#define URINGEST_ENGINE_RTMP_RTMP_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace uringest::rtmp {

// ---- Handshake (spec 5.2) ----
inline constexpr uint8_t kRtmpVersion = 3;      // C0/S0 for plain RTMP
inline constexpr uint8_t kRtmpeVersion = 6;     // C0 of RTMPE (encrypted); not supported
inline constexpr size_t kHandshakeSize = 1536;  // C1, C2, S1, S2: time(4) + zero(4) + random(1528)

// ---- Chunk stream (spec 5.3) ----
// Basic header: fmt(2 bits) + csid(6 bits). csid 0 and 1 select the 2- and 3-byte forms,
// whose next byte (little-endian 16 bits) holds csid - 64.
inline constexpr size_t kBasicHeaderMax = 3;
inline constexpr uint8_t kBasicHeaderIdMask = 0x3F;  // the low 6 bits of the first byte
inline constexpr uint8_t kTwoByteBasicHeader = 0;
inline constexpr uint8_t kThreeByteBasicHeader = 1;
inline constexpr uint32_t kMinChunkStreamId = 2;
inline constexpr uint32_t kOneByteChunkStreamIdMax = 63;
inline constexpr uint32_t kMultiByteChunkStreamIdBase = kOneByteChunkStreamIdMax + 1;  // 64
inline constexpr uint32_t kTwoByteChunkStreamIdMax = kMultiByteChunkStreamIdBase + 255;
inline constexpr uint32_t kMaxChunkStreamId = kMultiByteChunkStreamIdBase + 65535;  // 65599
// Message header sizes by fmt 0..3: timestamp(3) + length(3) + type(1) + stream id(4),
// then timestamp delta(3) + length(3) + type(1), then delta(3), then nothing.
inline constexpr size_t kMessageHeaderSize[4] = {3 + 3 + 1 + 4, 3 + 3 + 1, 3, 0};
inline constexpr size_t kExtendedTimestampSize = 4;
// A 24-bit timestamp field holding this value means "the extended timestamp follows".
inline constexpr uint32_t kExtendedTimestampMarker = 0xFFFFFF;
inline constexpr size_t kChunkHeaderMax =
    kBasicHeaderMax + kMessageHeaderSize[0] + kExtendedTimestampSize;
inline constexpr uint32_t kDefaultChunkSize = 128;
// Set Chunk Size accepts 1..2^31-1; a chunk can't carry more than a message can hold.
inline constexpr uint32_t kMaxSetChunkSize = 0x7FFFFFFF;
inline constexpr uint32_t kMaxEffectiveChunkSize = 0xFFFFFF;
inline constexpr uint32_t kMaxMessageLength = 0xFFFFFF;  // the 24-bit length field

// Chunk stream ids by convention (what librtmp, ffmpeg and OBS use).
inline constexpr uint32_t kControlChunkStream = 2;        // protocol control, user control
inline constexpr uint32_t kCommandChunkStream = 3;        // NetConnection commands
inline constexpr uint32_t kStreamCommandChunkStream = 5;  // onStatus and stream commands

// ---- Message type ids (spec 5.4, 6.2, 7.1) ----
enum class MessageType : uint8_t {
  kSetChunkSize = 1,
  kAbort = 2,
  kAcknowledgement = 3,
  kUserControl = 4,
  kWindowAckSize = 5,
  kSetPeerBandwidth = 6,
  kAudio = 8,
  kVideo = 9,
  kDataAmf3 = 15,
  kSharedObjectAmf3 = 16,
  kCommandAmf3 = 17,
  kDataAmf0 = 18,
  kSharedObjectAmf0 = 19,
  kCommandAmf0 = 20,
  kAggregate = 22,
};

// Messages of type 1..6 travel on chunk stream 2 with message stream id 0.
inline constexpr bool IsProtocolControl(MessageType type) {
  return static_cast<uint8_t>(type) >= 1 && static_cast<uint8_t>(type) <= 6;
}

// ---- User Control events (spec 7.1.7): event type(2) + event data ----
enum class UserControlEvent : uint16_t {
  kStreamBegin = 0,
  kStreamEof = 1,
  kStreamDry = 2,
  kSetBufferLength = 3,  // stream id(4) + buffer length ms(4)
  kStreamIsRecorded = 4,
  kPingRequest = 6,   // timestamp(4)
  kPingResponse = 7,  // timestamp(4)
};

// Set Peer Bandwidth limit types (spec 5.4.5).
enum class BandwidthLimit : uint8_t { kHard = 0, kSoft = 1, kDynamic = 2 };

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_RTMP_FORMAT_H_
