// shared_access.h: how ringbuf touches memory that other processes write concurrently.
//
// Shared fields are plain integers in the ring_format.h structs; every concurrent access
// goes through std::atomic_ref, which is lock-free and address-free for these sizes (so it
// works across processes that map the same object at different addresses).
//
// Payload bytes and seqlocked entries are read optimistically and validated afterwards
// (the seqlock pattern). CopyFromShared/CopyToShared do those copies: plain memcpy in
// normal builds, and relaxed atomic word accesses under ThreadSanitizer, which otherwise
// reports the (intended, validated) overlapping accesses as data races.
//
// AcquireFence/ReleaseFence order those copies against the position loads and stores
// that validate them. ThreadSanitizer doesn't model fences (GCC refuses them under
// -fsanitize=thread), so there the copies themselves use acquire loads and release
// stores, which give the same ordering, and the fences are only compiler barriers.

#ifndef URINGEST_RINGBUF_INTERNAL_SHARED_ACCESS_H_
#define URINGEST_RINGBUF_INTERNAL_SHARED_ACCESS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#if defined(__SANITIZE_THREAD__)
#define URINGEST_RINGBUF_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define URINGEST_RINGBUF_TSAN 1
#endif
#endif

namespace uringest::ringbuf::internal {

template <typename T>
std::atomic_ref<T> Shared(const T& field) {
  static_assert(std::atomic_ref<T>::is_always_lock_free);
  return std::atomic_ref<T>(const_cast<T&>(field));
}

template <typename T>
T LoadAcquire(const T& field) {
  return Shared(field).load(std::memory_order_acquire);
}
template <typename T>
T LoadRelaxed(const T& field) {
  return Shared(field).load(std::memory_order_relaxed);
}
template <typename T>
void StoreRelease(T& field, T value) {
  Shared(field).store(value, std::memory_order_release);
}
template <typename T>
void StoreRelaxed(T& field, T value) {
  Shared(field).store(value, std::memory_order_relaxed);
}
// Adds to a counter only one thread writes (cheaper than fetch_add, still tear-free).
template <typename T>
void AddRelaxed(T& field, T delta) {
  StoreRelaxed(field, static_cast<T>(LoadRelaxed(field) + delta));
}

#if defined(URINGEST_RINGBUF_TSAN)
inline void AcquireFence() { std::atomic_signal_fence(std::memory_order_seq_cst); }
inline void ReleaseFence() { std::atomic_signal_fence(std::memory_order_seq_cst); }
inline void CopyFromShared(void* dst, const void* src, size_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  auto* in = static_cast<const uint8_t*>(src);
  for (; n > 0 && reinterpret_cast<uintptr_t>(in) % 8 != 0; --n) {
    *out++ = __atomic_load_n(in++, __ATOMIC_ACQUIRE);
  }
  for (; n >= 8; n -= 8, in += 8, out += 8) {
    uint64_t word = __atomic_load_n(reinterpret_cast<const uint64_t*>(in), __ATOMIC_ACQUIRE);
    std::memcpy(out, &word, 8);
  }
  for (; n > 0; --n) *out++ = __atomic_load_n(in++, __ATOMIC_ACQUIRE);
}
inline void CopyToShared(void* dst, const void* src, size_t n) {
  auto* out = static_cast<uint8_t*>(dst);
  auto* in = static_cast<const uint8_t*>(src);
  for (; n > 0 && reinterpret_cast<uintptr_t>(out) % 8 != 0; --n) {
    __atomic_store_n(out++, *in++, __ATOMIC_RELEASE);
  }
  for (; n >= 8; n -= 8, in += 8, out += 8) {
    uint64_t word;
    std::memcpy(&word, in, 8);
    __atomic_store_n(reinterpret_cast<uint64_t*>(out), word, __ATOMIC_RELEASE);
  }
  for (; n > 0; --n) __atomic_store_n(out++, *in++, __ATOMIC_RELEASE);
}
inline void StreamToShared(void* dst, const void* src, size_t n) { CopyToShared(dst, src, n); }
inline void StreamFence() {}
#else
inline void AcquireFence() { std::atomic_thread_fence(std::memory_order_acquire); }
inline void ReleaseFence() { std::atomic_thread_fence(std::memory_order_release); }
inline void CopyFromShared(void* dst, const void* src, size_t n) {
  if (n != 0) std::memcpy(dst, src, n);  // memcpy(p, nullptr, 0) is undefined
}
inline void CopyToShared(void* dst, const void* src, size_t n) {
  if (n != 0) std::memcpy(dst, src, n);
}
// CopyToShared for bulk payload, with non-temporal stores where the CPU has them: the
// bytes go to memory without first reading the destination's cache lines (a ring
// larger than the cache would otherwise cost a read of every line it writes) and
// without evicting the writer's working set. They are weakly ordered: StreamFence()
// must come before the release store that publishes them.
inline void StreamToShared(void* dst, const void* src, size_t n) {
#if defined(__SSE2__)
  auto* out = static_cast<uint8_t*>(dst);
  auto* in = static_cast<const uint8_t*>(src);
  const size_t head = (64 - reinterpret_cast<uintptr_t>(out) % 64) % 64;
  if (n < head + 256) {
    CopyToShared(dst, src, n);
    return;
  }
  CopyToShared(out, in, head);
  out += head, in += head, n -= head;
  for (; n >= 64; n -= 64, in += 64, out += 64) {
    const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in));
    const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 16));
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 32));
    const __m128i d = _mm_loadu_si128(reinterpret_cast<const __m128i*>(in + 48));
    _mm_stream_si128(reinterpret_cast<__m128i*>(out), a);
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 16), b);
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 32), c);
    _mm_stream_si128(reinterpret_cast<__m128i*>(out + 48), d);
  }
  CopyToShared(out, in, n);
#else
  CopyToShared(dst, src, n);
#endif
}
inline void StreamFence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}
#endif

}  // namespace uringest::ringbuf::internal

#endif  // URINGEST_RINGBUF_INTERNAL_SHARED_ACCESS_H_
