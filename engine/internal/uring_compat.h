// uring_compat.h: the io_uring definitions that Debian 12's liburing 2.3 header lacks,
// for kernel features newer than it. They are used only after ProbeIoUring() found the
// running kernel supports them. Values from the kernel's include/uapi/linux/io_uring.h.

#ifndef URINGEST_ENGINE_INTERNAL_URING_COMPAT_H_
#define URINGEST_ENGINE_INTERNAL_URING_COMPAT_H_

#include <liburing.h>

// Kernel 6.10: a recv that fills several provided buffers in one completion
// (sqe->ioprio bit 4), announced by feature bit 14.
#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)
#endif

// Kernel 6.12: provided buffers consumed incrementally (io_uring_buf_reg.flags, called
// `pad` in liburing 2.3's struct); a completion that leaves its buffer partly free for
// more data sets IORING_CQE_F_BUF_MORE.
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

#endif  // URINGEST_ENGINE_INTERNAL_URING_COMPAT_H_
