// publish_authorizer.h: who may publish. Before a Session claims a stream name it asks
// its PublishAuthorizer, which answers at once (allow, deny) or later (pending: an HTTP
// hook is being asked). A pending answer comes back through Session::CompleteApproval on
// the connection's thread; until then the stream waits, with nothing claimed.
//
//   class Allowlist : public PublishAuthorizer {
//     PublishVerdict Authorize(const PublishRequest& r) override {
//       return r.key == expected_ ? PublishVerdict::Allow() : PublishVerdict::Deny("bad key");
//     }
//   };
//   Session session(options, &sender, &sink, &registry, &allowlist);
//
// The key a publisher presents (PublishKey below) is a secret: neither the session nor
// the authorizer may put it into a log line, a status description or the ring.

#ifndef URINGEST_ENGINE_RTMP_PUBLISH_AUTHORIZER_H_
#define URINGEST_ENGINE_RTMP_PUBLISH_AUTHORIZER_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace uringest::rtmp {

struct PublishRequest {
  uint32_t stream_id = 0;
  // Names this request among every request of its session: an answer that arrives for
  // an older request of the same stream (deleted and published again) is dropped.
  uint64_t ticket = 0;
  std::string_view app;   // without its query
  std::string_view name;  // without its query
  std::string_view key;   // PublishKey(); "" when none was given. Never log it.
};

struct PublishVerdict {
  enum class Kind : uint8_t { kAllow, kDeny, kPending };
  Kind kind = Kind::kAllow;
  // kDeny: why, for the client's onStatus description and the server's log. Must not
  // hold the key.
  std::string reason;

  static PublishVerdict Allow() { return {}; }
  static PublishVerdict Deny(std::string reason) { return {Kind::kDeny, std::move(reason)}; }
  static PublishVerdict Pending() { return {Kind::kPending, {}}; }
};

// Called on the connection's thread; must not block (a slow check answers kPending).
class PublishAuthorizer {
 public:
  virtual ~PublishAuthorizer() = default;
  // Views in `request` are valid during the call only.
  virtual PublishVerdict Authorize(const PublishRequest& request) = 0;
};

// The key a publisher presents, as nginx-rtmp and SRS setups pass it: the `key`
// parameter of the publish name's query ("name?key=SECRET&x=1"), else of the app's query
// ("live?key=SECRET"); a query without any '=' is a key by itself ("name?SECRET").
// Percent-escapes are not decoded (keys are compared as sent). "" when there is none.
std::string_view PublishKey(std::string_view name_query, std::string_view app_query);

}  // namespace uringest::rtmp

#endif  // URINGEST_ENGINE_RTMP_PUBLISH_AUTHORIZER_H_
