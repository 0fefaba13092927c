// timestamp_unwrapper.h: turns RTMP's 32-bit millisecond timestamps into 64-bit time.
//
// RTMP timestamps wrap every 2^32 ms (49.7 days). Each new 32-bit value is placed at
// the 64-bit time nearest to the previous one, so a stream keeps counting up across the
// wrap and a small step backwards (B-frames, a jittery encoder) stays a small step.
// Some encoders never switch to the extended timestamp field and instead roll their
// 24-bit field over from 0xFFFFFF to 0 (at 4.66 hours); a jump from the last 2^16 ms
// below 2^24 to the first 2^16 ms is taken as that rollover and counted forwards.
//
//   TimestampUnwrapper unwrap;
//   uint64_t t = unwrap.Next(0xFFFFFFF0);  // 4294967280
//   t = unwrap.Next(0x10);                 // 4294967312: past the 32-bit wrap
//   A stream that starts at 5 and steps to 0xFFFFFFF0 goes forwards: time never goes
//   below zero.

#ifndef URINGEST_ENGINE_RTMP_TIMESTAMP_UNWRAPPER_H_
#define URINGEST_ENGINE_RTMP_TIMESTAMP_UNWRAPPER_H_

#include <cstdint>

namespace uringest::rtmp {

class TimestampUnwrapper {
 public:
  // The 24-bit rollover window: the last and the first kRolloverWindow ms of a 24-bit
  // timestamp.
  static constexpr uint32_t kTimestamp24Wrap = 1u << 24;
  static constexpr uint32_t kRolloverWindow = 1u << 16;

  // Returns the 64-bit time of the 32-bit timestamp `ts`.
  uint64_t Next(uint32_t ts) {
    if (started_) {
      const int32_t step = static_cast<int32_t>(ts - last32_);
      if (last32_ >= kTimestamp24Wrap - kRolloverWindow && last32_ < kTimestamp24Wrap &&
          ts < kRolloverWindow) {
        base_ += kTimestamp24Wrap;  // the encoder's 24-bit counter rolled over
      } else if (step > 0 && ts < last32_) {
        base_ += uint64_t{1} << 32;  // forwards past the 32-bit wrap
      } else if (step < 0 && ts > last32_ && base_ >= (uint64_t{1} << 32)) {
        base_ -= uint64_t{1} << 32;  // a step back across the wrap
      }
    }
    started_ = true;
    last32_ = ts;
    return base_ + ts;
  }

  bool started() const { return started_; }

 private:
  uint64_t base_ = 0;  // what the wraps so far add to the 32-bit value
  uint32_t last32_ = 0;
  bool started_ = false;
};

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_TIMESTAMP_UNWRAPPER_H_
