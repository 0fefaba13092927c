// stream_names.h: the rules an application or stream name must follow (session.h says
// why), and the "?query" a publisher may append to either.
//
//   auto [name, query] = SplitQuery("cam1?key=s3cret");          // "cam1", "key=s3cret"
//   absl::Status ok = ValidateName("stream name", name, query, 1024, 4096);
//
// Thread safety: free functions over their arguments.

#ifndef URINGEST_ENGINE_RTMP_STREAM_NAMES_H_
#define URINGEST_ENGINE_RTMP_STREAM_NAMES_H_

#include <cstddef>
#include <string_view>
#include <utility>

#include "absl/status/status.h"

namespace uringest::rtmp {

// The part before the first '?', and the part after it ("" when there is none).
std::pair<std::string_view, std::string_view> SplitQuery(std::string_view s);

// OK if `name` is non-empty '/'-separated segments, none empty, "." or "..", without
// control bytes (< 0x20, 0x7F), at most `max_name_length` bytes, and its `query` at most
// `max_query_length`; else InvalidArgument naming `what` ("stream name") and the rule.
absl::Status ValidateName(std::string_view what, std::string_view name, std::string_view query,
                          size_t max_name_length, size_t max_query_length);

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_STREAM_NAMES_H_
