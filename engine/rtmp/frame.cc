#include "engine/rtmp/frame.h"

#include "media/media_tag.h"

namespace uringest::rtmp {

Frame MediaFrame(const Message& message, uint32_t stream_id) {
  const bool video = message.header.type == MessageType::kVideo;
  const media::MediaTag tag =
      video ? media::ParseVideoTag(message.payload) : media::ParseAudioTag(message.payload);
  return Frame{.type = video ? FrameType::kVideo : FrameType::kAudio,
               .stream_id = stream_id,
               .dts = message.header.timestamp,
               .composition_offset = tag.composition_offset,
               .keyframe = tag.keyframe,
               .sequence_header = tag.sequence_header,
               .codec = tag.codec,
               .ex_header = tag.ex_header,
               .command = tag.command,
               .packet_type = tag.packet_type,
               .track_id = tag.track_id,
               .many_tracks = tag.many_tracks,
               .time_offset_ns = tag.time_offset_ns,
               .payload = message.payload,
               .pieces = message.pieces};
}

}  // namespace uringest::rtmp
