// enhanced_caps.h: the Enhanced RTMP capability negotiation of connect (veovera v2,
// "Enhancing NetConnection connect Command"): what a publisher's connect announces, and
// what uringest answers in its _result.
//
//   EnhancedCaps client = ReadEnhancedCaps(connect_object);
//   if (client.present) EncodeEnhancedCaps(client, &result);   // inside the _result object
//
// Thread safety: plain values and free functions.

#ifndef URINGEST_ENGINE_RTMP_ENHANCED_CAPS_H_
#define URINGEST_ENGINE_RTMP_ENHANCED_CAPS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "media/amf0.h"

namespace uringest::rtmp {

// Enhanced RTMP capability flags the server announces in its connect _result.
inline constexpr uint32_t kCapsExReconnect = 0x01;
inline constexpr uint32_t kCapsExMultitrack = 0x02;
inline constexpr uint32_t kCapsExModEx = 0x04;
inline constexpr uint32_t kCapsExTimestampNanoOffset = 0x08;

// Enhanced RTMP v2's Reconnect Request: onStatus with this code on the NetConnection, the
// server asking a client that announced kCapsExReconnect to publish elsewhere.
inline constexpr std::string_view kReconnectRequestCode = "NetConnection.Connect.ReconnectRequest";
// FourCcInfoMask values of [video|audio]FourCcInfoMap.
inline constexpr uint32_t kFourCcCanDecode = 0x01;
inline constexpr uint32_t kFourCcCanEncode = 0x02;
inline constexpr uint32_t kFourCcCanForward = 0x04;

// What a publisher's connect announced of Enhanced RTMP. Bounded: at most
// kMaxEnhancedFourCcs entries of each list are kept.
struct EnhancedCaps {
  static constexpr size_t kMaxEnhancedFourCcs = 32;
  bool present = false;                    // any of the properties below was sent
  std::vector<std::string> fourcc_list;    // fourCcList: FourCCs, or "*"
  std::vector<std::string> video_fourccs;  // the keys of videoFourCcInfoMap
  std::vector<std::string> audio_fourccs;  // the keys of audioFourCcInfoMap
  uint32_t caps_ex = 0;                    // capsEx: the kCapsEx* bits above
};

// Reads fourCcList, videoFourCcInfoMap, audioFourCcInfoMap and capsEx from a connect's
// command object; entries of the wrong type are skipped.
EnhancedCaps ReadEnhancedCaps(const media::amf0::Value& connect_object);

// Appends the properties of the _result that answers an Enhanced RTMP connect: the
// client's fourCcList back, CanForward for each FourCC uringest knows, each the client
// named and "*", and the capsEx uringest supports (reconnect requests, multitrack,
// ModEx, nanosecond offsets).
void EncodeEnhancedCaps(const EnhancedCaps& client, std::vector<uint8_t>* out);

// Appends what a publisher announces of Enhanced RTMP in its connect's command object:
// fourCcList (the FourCCs it will send) and capsEx (if not 0).
void EncodeEnhancedConnect(const EnhancedCaps& caps, std::vector<uint8_t>* out);

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_ENHANCED_CAPS_H_
