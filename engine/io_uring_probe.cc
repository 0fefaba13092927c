#include "engine/io_uring_probe.h"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/internal/uring_compat.h"

namespace uringest::engine {
namespace {

constexpr unsigned kProbeEntries = 8;
constexpr unsigned kProbeBuffers = 4;
constexpr unsigned kProbeBufferSize = 64;

std::string ReadSysctl(const char* path) {
  std::ifstream in(path);
  std::string value;
  in >> value;
  return value;
}

std::string SetupFailure(int err) {
  if (err == ENOSYS) {
    return "the kernel has no io_uring (older than 5.1, or a sandbox such as gVisor)";
  }
  const std::string disabled = ReadSysctl("/proc/sys/kernel/io_uring_disabled");
  if ((err == EPERM || err == EACCES) && !disabled.empty() && disabled != "0") {
    return absl::StrCat("io_uring is disabled by sysctl kernel.io_uring_disabled=", disabled);
  }
  if (err == EPERM || err == EACCES) {
    return absl::StrCat("io_uring_setup was refused (", strerror(err),
                        "): a seccomp profile such as Docker's default blocks it");
  }
  return absl::StrCat("io_uring_setup failed: ", strerror(err));
}

// A provided buffer ring of kProbeBuffers buffers, registered on `ring` as group 0.
struct ProbeBuffers {
  io_uring_buf_ring* ring = nullptr;
  size_t ring_bytes = 0;
  char data[kProbeBuffers][kProbeBufferSize];

  int Register(io_uring* uring, uint16_t flags) {
    ring_bytes = kProbeBuffers * sizeof(io_uring_buf);
    void* mem =
        mmap(nullptr, ring_bytes, PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (mem == MAP_FAILED) return -errno;
    ring = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(ring);
    reg.ring_entries = kProbeBuffers;
    reg.bgid = 0;
    reg.pad = flags;  // io_uring_buf_reg.flags in newer headers
    const int res = io_uring_register_buf_ring(uring, &reg, 0);
    if (res < 0) return res;
    io_uring_buf_ring_init(ring);
    for (unsigned i = 0; i < kProbeBuffers; ++i) {
      io_uring_buf_ring_add(ring, data[i], kProbeBufferSize, i,
                            io_uring_buf_ring_mask(kProbeBuffers), i);
    }
    io_uring_buf_ring_advance(ring, kProbeBuffers);
    return 0;
  }
  ~ProbeBuffers() {
    if (ring != nullptr) munmap(ring, ring_bytes);
  }
};

// Submits one multishot recv on a socket pair and sees whether it stays armed.
bool ProbeRecvMultishot(io_uring* ring) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return false;
  io_uring_sqe* sqe = io_uring_get_sqe(ring);
  io_uring_prep_recv_multishot(sqe, fds[0], nullptr, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = 0;
  io_uring_submit(ring);
  bool ok = false;
  if (write(fds[1], "x", 1) == 1) {
    io_uring_cqe* cqe = nullptr;
    if (io_uring_wait_cqe(ring, &cqe) == 0) {
      ok = cqe->res == 1 && (cqe->flags & IORING_CQE_F_MORE) != 0;
      io_uring_cqe_seen(ring, cqe);
    }
  }
  close(fds[1]);
  close(fds[0]);
  // Closing the socket ends the recv; reap its last completion.
  io_uring_cqe* cqe = nullptr;
  if (ok && io_uring_wait_cqe(ring, &cqe) == 0) io_uring_cqe_seen(ring, cqe);
  return ok;
}

void ProbeOpcodes(io_uring* ring, IoUringSupport* support) {
  io_uring_probe* probe = io_uring_get_probe_ring(ring);
  if (probe == nullptr) return;
  support->msg_ring = io_uring_opcode_supported(probe, IORING_OP_MSG_RING);
  // Multishot accept arrived with the buffer rings' kernel (5.19); both need ACCEPT.
  support->accept_multishot = io_uring_opcode_supported(probe, IORING_OP_ACCEPT);
  io_uring_free_probe(probe);
}

// ProbeIoUring() on the calling thread.
IoUringSupport ProbeOnThisThread() {
  IoUringSupport support;
  io_uring ring;
  io_uring_params params{};
  params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
  int res = io_uring_queue_init_params(kProbeEntries, &ring, &params);
  if (res == -EINVAL) {
    params = {};
    params.flags = IORING_SETUP_SINGLE_ISSUER;
    res = io_uring_queue_init_params(kProbeEntries, &ring, &params);
    if (res == -EINVAL) {
      params = {};
      res = io_uring_queue_init_params(kProbeEntries, &ring, &params);
    }
  }
  if (res < 0) {
    support.reason = SetupFailure(-res);
    return support;
  }
  support.setup = true;
  support.single_issuer = params.flags & IORING_SETUP_SINGLE_ISSUER;
  support.defer_taskrun = params.flags & IORING_SETUP_DEFER_TASKRUN;
  support.recv_bundle = params.features & IORING_FEAT_RECVSEND_BUNDLE;
  ProbeOpcodes(&ring, &support);
  {
    ProbeBuffers buffers;
    support.buffer_ring = buffers.Register(&ring, 0) == 0;
    if (support.buffer_ring) {
      support.recv_multishot = ProbeRecvMultishot(&ring);
      io_uring_unregister_buf_ring(&ring, 0);
    }
  }
  if (support.buffer_ring) {
    ProbeBuffers incremental;
    support.incremental_buffers = incremental.Register(&ring, IOU_PBUF_RING_INC) == 0;
    if (support.incremental_buffers) io_uring_unregister_buf_ring(&ring, 0);
  }
  io_uring_queue_exit(&ring);
  if (!support.usable()) {
    support.reason = !support.buffer_ring      ? "the kernel lacks provided buffer rings (5.19)"
                     : !support.recv_multishot ? "the kernel lacks multishot recv (6.0)"
                                               : "the kernel lacks multishot accept (5.19)";
  }
  return support;
}

}  // namespace

// The scratch ring lives and dies on a thread of its own. The kernel frees a ring after
// io_uring_queue_exit() returns, and then interrupts every task that used it (task work
// with a signal notification): on the caller's thread a blocking call with a timeout,
// such as connect() on a socket with SO_SNDTIMEO, would fail with EINTR some
// milliseconds later. A thread that has exited is no longer the ring's.
IoUringSupport ProbeIoUring() {
  IoUringSupport support;
  std::thread([&support] { support = ProbeOnThisThread(); }).join();
  return support;
}

std::string IoUringSupport::Describe() const {
  if (!setup) return "unavailable: " + reason;
  std::vector<std::string> features;
  auto add = [&](bool on, const char* name) {
    if (on) features.push_back(name);
  };
  add(single_issuer, "single-issuer");
  add(defer_taskrun, "defer-taskrun");
  add(buffer_ring, "buffer-ring");
  add(recv_multishot, "multishot-recv");
  add(accept_multishot, "multishot-accept");
  add(msg_ring, "msg-ring");
  add(recv_bundle, "recv-bundle");
  add(incremental_buffers, "incremental-buffers");
  return absl::StrJoin(features, " ");
}

}  // namespace uringest::engine
