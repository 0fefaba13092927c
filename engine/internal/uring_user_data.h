// uring_user_data.h: the one encoding of io_uring's 64-bit user_data in the engine.
//
//   bits 63..56  Op: what the submission was
//   bits 31..0   the connection id (kRecv, kSend) or the listener index (kAccept)
//
// A completion is routed by its Op; stale completions of a connection that is closing
// are recognised by the loop's per-connection state, not by the encoding.

#ifndef URINGEST_ENGINE_INTERNAL_URING_USER_DATA_H_
#define URINGEST_ENGINE_INTERNAL_URING_USER_DATA_H_

#include <cstdint>

namespace uringest::engine::internal {

enum class Op : uint8_t {
  kAccept = 1,
  kRecv = 2,
  kSend = 3,
  kTick = 4,
  kWake = 5,
  kCancel = 6,  // cancellations: their completions carry nothing to act on
};

inline uint64_t EncodeUserData(Op op, uint32_t index) {
  return uint64_t{static_cast<uint8_t>(op)} << 56 | index;
}
inline Op UserDataOp(uint64_t user_data) { return static_cast<Op>(user_data >> 56); }
inline uint32_t UserDataIndex(uint64_t user_data) { return static_cast<uint32_t>(user_data); }

}  // namespace uringest::engine::internal

#endif  // URINGEST_ENGINE_INTERNAL_URING_USER_DATA_H_
