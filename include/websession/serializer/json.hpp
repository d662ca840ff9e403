// The default serializer: session metadata and data as one Boost.JSON document, in a versioned
// envelope so the format can evolve without misreading old values.
#pragma once

#include <websession/concepts.hpp>
#include <websession/detail/base64url.hpp>
#include <websession/error.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/value.hpp>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace websession {

/// Boost.JSON serializer, a model of `serializer`.
///
/// Envelope (version 1): `{"v":1,"c":created,"s":last_seen,"i":idle_deadline,
/// "a":absolute_deadline,"u":user,"x":csrf_secret,"f":fingerprint,"d":{data}}`, times in
/// milliseconds since the Unix epoch, the CSRF secret in base64url; "u", "x" and "f" are left
/// out when empty. Unknown members are ignored so a newer writer can add fields.
///
/// deserialize() gives error::malformed for anything else: not JSON, nesting deeper than
/// Boost.JSON's limit (32), another envelope version, a missing or mistyped member.
class json_serializer {
 public:
  static constexpr std::int64_t format_version = 1;

  void serialize(const session_metadata& meta, const boost::json::object& data,
                 std::string& out) const {
    out.clear();
    out.reserve(160 + meta.user.size() + meta.fingerprint.size() + 64 * data.size());
    out += "{\"v\":1";
    append_time(out, ",\"c\":", meta.created);
    append_time(out, ",\"s\":", meta.last_seen);
    append_time(out, ",\"i\":", meta.idle_deadline);
    append_time(out, ",\"a\":", meta.absolute_deadline);
    if (!meta.user.empty()) {
      out += ",\"u\":";
      out += boost::json::serialize(boost::json::string_view(meta.user));
    }
    if (!meta.csrf_secret.empty()) {
      out += ",\"x\":\"";
      detail::base64url_encode(meta.csrf_secret.data(), meta.csrf_secret.size(), out);
      out += '"';
    }
    if (!meta.fingerprint.empty()) {
      out += ",\"f\":";
      out += boost::json::serialize(boost::json::string_view(meta.fingerprint));
    }
    out += ",\"d\":";
    // Stream the data straight into `out`: no intermediate string for the largest part.
    boost::json::serializer sr;
    sr.reset(&data);
    std::size_t used = out.size();
    while (!sr.done()) {
      out.resize(used + 1024);
      used += sr.read(out.data() + used, out.size() - used).size();
    }
    out.resize(used);
    out += '}';
  }

  boost::system::error_code deserialize(std::string_view in, session_metadata& meta,
                                        boost::json::object& data) const {
    boost::system::error_code ec;
    boost::json::value root = boost::json::parse(boost::json::string_view(in.data(), in.size()), ec);
    if (ec) return error::malformed;
    boost::json::object* env = root.if_object();
    if (!env) return error::malformed;
    const boost::json::value* v = env->if_contains("v");
    if (!v || !v->is_int64() || v->get_int64() != format_version) return error::malformed;

    session_metadata m;
    if (!read_time(*env, "c", m.created) || !read_time(*env, "s", m.last_seen) ||
        !read_time(*env, "i", m.idle_deadline) || !read_time(*env, "a", m.absolute_deadline))
      return error::malformed;
    if (!read_string(*env, "u", m.user) || !read_string(*env, "f", m.fingerprint))
      return error::malformed;
    std::string csrf_text;
    if (!read_string(*env, "x", csrf_text)) return error::malformed;
    if (!csrf_text.empty() && !detail::base64url_decode(csrf_text, m.csrf_secret))
      return error::malformed;
    boost::json::value* d = env->if_contains("d");
    if (!d || !d->is_object()) return error::malformed;

    m.version = meta.version;  // owned by the store, not by the encoding
    meta = std::move(m);
    data = std::move(d->get_object());
    return {};
  }

 private:
  static void append_time(std::string& out, std::string_view label, time_point t) {
    out += label;
    char buf[24];
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    auto r = std::to_chars(buf, buf + sizeof buf, ms);
    out.append(buf, r.ptr);
  }

  static bool read_time(const boost::json::object& env, std::string_view name, time_point& out) {
    const boost::json::value* v = env.if_contains(name);
    // Bounded to [1970, 3000) so converting to the clock's nanoseconds cannot overflow.
    if (!v || !v->is_int64() || v->get_int64() < 0 || v->get_int64() >= 32503680000000) return false;
    out = time_point{std::chrono::duration_cast<time_point::duration>(
        std::chrono::milliseconds(v->get_int64()))};
    return true;
  }

  // Absent is fine (empty string); present but not a string is not.
  static bool read_string(const boost::json::object& env, std::string_view name, std::string& out) {
    const boost::json::value* v = env.if_contains(name);
    if (!v) return true;
    if (!v->is_string()) return false;
    out.assign(v->get_string().data(), v->get_string().size());
    return true;
  }
};

static_assert(serializer<json_serializer>);

}  // namespace websession
