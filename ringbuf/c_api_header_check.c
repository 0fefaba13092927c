/* Compiled as C by c_api_test: the C API header must stay valid C. */
#include "ringbuf/uringest_ring.h"

int uringest_ring_header_is_c(void) {
  uringest_ring_frame frame = {0};
  uringest_ring_stream_info info = {0};
  return (int)(sizeof(frame) > 0 && sizeof(info) > 0 && URINGEST_RING_FRAME == 1);
}
