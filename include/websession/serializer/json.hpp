// SPDX-License-Identifier: BSL-1.0
// The default serializer: session metadata and data as one Boost.JSON document, in a versioned
// envelope so the format can evolve without misreading old values.
#pragma once

#include <websession/concepts.hpp>
#include <websession/detail/base64url.hpp>
#include <websession/error.hpp>
#include <websession/session.hpp>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/value.hpp>
#include <boost/system/error_code.hpp>

#include <openssl/crypto.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstddef>
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
/// serialize() and deserialize() accept exactly the same sessions, so a session that was saved
/// can always be loaded. serialize() refuses with error::invalid_data (and an empty `out`):
/// - a string that is not well-formed UTF-8 (RFC 3629: no overlong forms, surrogates, code
///   points above U+10FFFF or truncated sequences) anywhere: data values and object keys at any
///   depth, the user id, the fingerprint;
/// - data nested deeper than max_data_depth (31) containers, the data object itself counting as
///   one: with the envelope that is max_depth (32), the depth limit deserialize() parses with;
/// - a non-finite double (infinity, NaN), which JSON cannot represent;
/// - a time outside [1970, 2200), the range deserialize() accepts.
///
/// deserialize() gives error::malformed for anything else: not JSON (or invalid UTF-8), nesting
/// deeper than max_depth, another envelope version, a missing or mistyped member, a number
/// beyond the range of double (which Boost.JSON would read as infinity).
///
/// The plaintext is never left behind in freed memory by serialize(): `out` grows by copying
/// into a larger buffer and wiping the old one (OPENSSL_cleanse), and is wiped before it is
/// emptied on failure.
class json_serializer {
 public:
  static constexpr std::int64_t format_version = 1;
  /// Deepest nesting of JSON containers in a stored value, the envelope included; deserialize()
  /// passes it to Boost.JSON as parse_options::max_depth.
  static constexpr std::size_t max_depth = 32;
  /// Deepest nesting of the session data, the data object itself counting as 1 (so
  /// `{"a":[[1]]}` has depth 3): max_depth minus the envelope.
  static constexpr std::size_t max_data_depth = max_depth - 1;

  /// Replaces `out` with the encoding of `meta` (but its version) and `data`. error::invalid_data
  /// (with `out` wiped and empty) for what deserialize() would refuse; see the class comment.
  boost::system::error_code serialize(const session_metadata& meta,
                                      const boost::json::object& data, std::string& out) const {
    if (!valid_utf8(meta.user) || !valid_utf8(meta.fingerprint) || !storable_time(meta.created) ||
        !storable_time(meta.last_seen) || !storable_time(meta.idle_deadline) ||
        !storable_time(meta.absolute_deadline) || !storable(data, 2)) {
      wipe(out);
      out.clear();
      return error::invalid_data;
    }
    out.clear();  // still owned: its old bytes are overwritten, not freed
    reserve_wiping(out, 160 + meta.user.size() + meta.fingerprint.size() + 64 * data.size());
    put(out, "{\"v\":1");
    append_time(out, ",\"c\":", meta.created);
    append_time(out, ",\"s\":", meta.last_seen);
    append_time(out, ",\"i\":", meta.idle_deadline);
    append_time(out, ",\"a\":", meta.absolute_deadline);
    boost::json::serializer sr;
    if (!meta.user.empty()) {
      put(out, ",\"u\":");
      sr.reset(boost::json::string_view(meta.user.data(), meta.user.size()));
      drain(sr, out);
    }
    if (!meta.csrf_secret.empty()) {
      put(out, ",\"x\":\"");
      std::string encoded;
      detail::base64url_encode(meta.csrf_secret.data(), meta.csrf_secret.size(), encoded);
      put(out, encoded);
      OPENSSL_cleanse(encoded.data(), encoded.size());
      put(out, "\"");
    }
    if (!meta.fingerprint.empty()) {
      put(out, ",\"f\":");
      sr.reset(boost::json::string_view(meta.fingerprint.data(), meta.fingerprint.size()));
      drain(sr, out);
    }
    put(out, ",\"d\":");
    // Stream the data straight into `out`: no intermediate string for the largest part.
    sr.reset(&data);
    drain(sr, out);
    put(out, "}");
    return {};
  }

  boost::system::error_code deserialize(std::string_view in, session_metadata& meta,
                                        boost::json::object& data) const {
    // What serialize() writes takes the quick path; anything else the full parse.
    if (read_canonical(in, meta, data)) return {};
    return read_parsed(in, meta, &data);
  }

  /// The metadata alone (the envelope: what a listing of sessions needs), as deserialize()
  /// gives it. For a value as serialize() writes it, the data is skipped, neither decoded nor
  /// checked (a sealed value comes from serialize()); anything else is parsed whole and refused
  /// as deserialize() refuses it. error::malformed for what is not an envelope of this format.
  boost::system::error_code deserialize_metadata(std::string_view in,
                                                 session_metadata& meta) const {
    session_metadata m;
    if (read_canonical_envelope(in, m) != 0) {
      m.version = meta.version;  // owned by the store, not by the encoding
      meta = std::move(m);
      return {};
    }
    return read_parsed(in, meta, nullptr);
  }

 private:
  // The full parse, for anything read_canonical does not take: the metadata into `meta`, the
  // data into `*data` (checked but dropped when `data` is null).
  static boost::system::error_code read_parsed(std::string_view in, session_metadata& meta,
                                               boost::json::object* data) {
    boost::system::error_code ec;
    boost::json::value root = boost::json::parse(boost::json::string_view(in.data(), in.size()),
                                                 ec, {}, strict_options());
    if (ec) return error::malformed;
    boost::json::object* env = root.if_object();
    if (!env) return error::malformed;
    // One pass over the envelope (the parser keeps the last of duplicate keys, so each name
    // is there at most once) instead of a lookup per member.
    const boost::json::value *v = nullptr, *c = nullptr, *s = nullptr, *i = nullptr,
                             *a = nullptr, *u = nullptr, *x = nullptr, *f = nullptr;
    boost::json::value* d = nullptr;
    for (boost::json::key_value_pair& kv : *env) {
      const boost::json::string_view k = kv.key();
      if (k.size() != 1) continue;  // unknown members are ignored
      switch (k[0]) {
        case 'v': v = &kv.value(); break;
        case 'c': c = &kv.value(); break;
        case 's': s = &kv.value(); break;
        case 'i': i = &kv.value(); break;
        case 'a': a = &kv.value(); break;
        case 'u': u = &kv.value(); break;
        case 'x': x = &kv.value(); break;
        case 'f': f = &kv.value(); break;
        case 'd': d = &kv.value(); break;
        default: break;
      }
    }
    if (!v || !v->is_int64() || v->get_int64() != format_version) return error::malformed;

    session_metadata m;
    if (!read_time(c, m.created) || !read_time(s, m.last_seen) ||
        !read_time(i, m.idle_deadline) || !read_time(a, m.absolute_deadline))
      return error::malformed;
    if (!read_string(u, m.user) || !read_string(f, m.fingerprint)) return error::malformed;
    if (x) {
      if (!x->is_string()) return error::malformed;
      const boost::json::string& text = x->get_string();
      if (!text.empty() &&
          !detail::base64url_decode(std::string_view(text.data(), text.size()), m.csrf_secret))
        return error::malformed;
    }
    if (!d || !d->is_object()) return error::malformed;
    // What serialize() would refuse: Boost.JSON reads a number beyond double's range (`1e999`)
    // as infinity, which serialize() cannot write back. The rest of what storable() checks the
    // parser has checked already: well-formed UTF-8 in every string and key (it rejects lone
    // surrogate escapes too), and the depth (max_depth).
    if (!finite_numbers(d->get_object())) return error::malformed;

    m.version = meta.version;  // owned by the store, not by the encoding
    meta = std::move(m);
    if (data) *data = std::move(d->get_object());
    return {};
  }

  // Times deserialize() accepts: [1970, 2200) in milliseconds (2200-01-01T00:00:00Z), so that
  // system_clock's nanoseconds (which end in 2262) cannot overflow.
  static constexpr std::int64_t max_time_ms = 7258118400000;

  static std::int64_t to_ms(time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }

  static bool storable_time(time_point t) {
    const std::int64_t ms = to_ms(t);
    return ms >= 0 && ms < max_time_ms;
  }

  // Well-formed UTF-8 (RFC 3629; Unicode table 3-7), what Boost.JSON's parser accepts.
  static bool valid_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* const end = p + s.size();
    while (p != end) {
      const unsigned c = *p;
      if (c < 0x80) {
        ++p;
        continue;
      }
      std::size_t extra = 0;  // continuation bytes after the lead
      unsigned lo = 0x80, hi = 0xBF;  // range of the first continuation byte
      if (c >= 0xC2 && c <= 0xDF) {
        extra = 1;
      } else if (c >= 0xE0 && c <= 0xEF) {
        extra = 2;
        if (c == 0xE0) lo = 0xA0;       // overlong
        else if (c == 0xED) hi = 0x9F;  // surrogates
      } else if (c >= 0xF0 && c <= 0xF4) {
        extra = 3;
        if (c == 0xF0) lo = 0x90;       // overlong
        else if (c == 0xF4) hi = 0x8F;  // above U+10FFFF
      } else {
        return false;  // a continuation byte, C0/C1 (overlong) or F5..FF
      }
      if (static_cast<std::size_t>(end - p) <= extra) return false;
      if (p[1] < lo || p[1] > hi) return false;
      for (std::size_t i = 2; i <= extra; ++i)
        if ((p[i] & 0xC0) != 0x80) return false;
      p += extra + 1;
    }
    return true;
  }

  // Whether `v`, a container at nesting level `depth` (or a scalar inside level depth - 1),
  // encodes to something deserialize() accepts. Recursion stops at max_depth.
  static bool storable(const boost::json::value& v, std::size_t depth) {
    switch (v.kind()) {
      case boost::json::kind::string: return valid_utf8(v.get_string());
      case boost::json::kind::double_: return std::isfinite(v.get_double());
      case boost::json::kind::array:
        if (depth > max_depth) return false;
        for (const boost::json::value& e : v.get_array())
          if (!storable(e, depth + 1)) return false;
        return true;
      case boost::json::kind::object: return storable(v.get_object(), depth);
      default: return true;
    }
  }

  static bool storable(const boost::json::object& o, std::size_t depth) {
    if (depth > max_depth) return false;
    for (const boost::json::key_value_pair& kv : o)
      if (!valid_utf8(kv.key()) || !storable(kv.value(), depth + 1)) return false;
    return true;
  }

  // Wipes every byte `s` owns, up to its capacity.
  static void wipe(std::string& s) noexcept {
    s.resize(s.capacity());  // never reallocates
    OPENSSL_cleanse(s.data(), s.size());
  }

  // Makes the capacity of `out` at least `n` without leaving its bytes in freed memory.
  static void reserve_wiping(std::string& out, std::size_t n) {
    if (n <= out.capacity()) return;
    std::string bigger;
    bigger.reserve(std::max(n, 2 * out.capacity()));
    bigger.assign(out);
    wipe(out);
    out.swap(bigger);
  }

  static void put(std::string& out, std::string_view s) {
    reserve_wiping(out, out.size() + s.size());
    out.append(s);
  }

  // Appends what `sr` writes, growing `out` as put() does.
  static void drain(boost::json::serializer& sr, std::string& out) {
    while (!sr.done()) {
      const std::size_t used = out.size();
      reserve_wiping(out, used + 1024);
      out.resize(out.capacity());
      out.resize(used + sr.read(out.data() + used, out.size() - used).size());
    }
  }

  static void append_time(std::string& out, std::string_view label, time_point t) {
    put(out, label);
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, to_ms(t));
    put(out, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
  }

  // What deserialize() parses with: strict JSON, well-formed UTF-8, at most max_depth deep.
  static boost::json::parse_options strict_options() noexcept {
    boost::json::parse_options po;
    po.max_depth = max_depth;
    po.allow_comments = false;
    po.allow_trailing_commas = false;
    po.allow_invalid_utf8 = false;
    return po;
  }

  // The envelope exactly as serialize() writes it (members in its order, no whitespace, no
  // escapes in the strings), read without building a JSON value for it: only the data is parsed.
  // False, with `meta` and `data` untouched, for any other shape or any doubt (another order,
  // unknown or repeated members, whitespace, an escape, a time out of range, data that does not
  // parse...): deserialize() then parses the whole document, which decides. So this accepts a
  // subset of what the full parse accepts, with the same result.
  static bool read_canonical(std::string_view in, session_metadata& meta,
                             boost::json::object& data) {
    session_metadata m;
    const std::size_t at = read_canonical_envelope(in, m);
    if (at == 0) return false;
    // The data alone: one level less deep than the whole document may be.
    boost::system::error_code ec;
    boost::json::parse_options po = strict_options();
    po.max_depth = max_data_depth;
    const std::string_view d = in.substr(at, in.size() - 1 - at);
    boost::json::value v = boost::json::parse(boost::json::string_view(d.data(), d.size()), ec,
                                              {}, po);
    if (ec || !v.is_object() || !finite_numbers(v.get_object())) return false;
    m.version = meta.version;  // owned by the store, not by the encoding
    meta = std::move(m);
    data = std::move(v.get_object());
    return true;
  }

  // read_canonical's envelope: every member before the data, into `m`. Returns where the data
  // starts (after `,"d":`; the document then ends with '}' at least 3 characters later), or 0
  // for any other shape.
  static std::size_t read_canonical_envelope(std::string_view in, session_metadata& m) {
    std::size_t at = 0;
    const auto take = [&](std::string_view lit) {
      if (in.substr(at, lit.size()) != lit) return false;
      at += lit.size();
      return true;
    };
    // A time as to_chars writes it: no sign, no leading zero, no fraction or exponent.
    const auto time = [&](std::string_view label, time_point& out) {
      if (!take(label)) return false;
      const std::size_t from = at;
      while (at < in.size() && at - from <= 13 && in[at] >= '0' && in[at] <= '9') ++at;
      const std::size_t n = at - from;
      if (n == 0 || n > 13 || (n > 1 && in[from] == '0')) return false;
      std::int64_t ms = 0;
      std::from_chars(in.data() + from, in.data() + at, ms);
      if (ms >= max_time_ms) return false;
      out = time_point{std::chrono::duration_cast<time_point::duration>(
          std::chrono::milliseconds(ms))};
      return true;
    };
    // A string member without escapes or control characters, in well-formed UTF-8.
    const auto text = [&](std::string_view label, std::string_view& out) {
      if (!take(label)) return true;  // absent
      const std::size_t from = at;
      while (at < in.size() && in[at] != '"') {
        const auto c = static_cast<unsigned char>(in[at]);
        if (c == '\\' || c < 0x20) return false;
        ++at;
      }
      if (at == in.size()) return false;
      out = in.substr(from, at - from);
      ++at;  // the closing quote
      return valid_utf8(out);
    };
    std::string_view user, csrf, fingerprint;
    if (!take("{\"v\":1") || !time(",\"c\":", m.created) || !time(",\"s\":", m.last_seen) ||
        !time(",\"i\":", m.idle_deadline) || !time(",\"a\":", m.absolute_deadline) ||
        !text(",\"u\":\"", user) || !text(",\"x\":\"", csrf) || !text(",\"f\":\"", fingerprint) ||
        !take(",\"d\":") || in.size() - at < 3 || in.back() != '}')
      return 0;
    if (!csrf.empty() && !detail::base64url_decode(csrf, m.csrf_secret)) return 0;
    m.user.assign(user);
    m.fingerprint.assign(fingerprint);
    return at;
  }

  // Present and an integer in [1970, 2200) in milliseconds, so converting to the clock's
  // nanoseconds cannot overflow.
  static bool read_time(const boost::json::value* v, time_point& out) {
    if (!v || !v->is_int64() || v->get_int64() < 0 || v->get_int64() >= max_time_ms) return false;
    out = time_point{std::chrono::duration_cast<time_point::duration>(
        std::chrono::milliseconds(v->get_int64()))};
    return true;
  }

  // Absent is fine (empty string); present but not a string is not.
  static bool read_string(const boost::json::value* v, std::string& out) {
    if (!v) return true;
    if (!v->is_string()) return false;
    out.assign(v->get_string().data(), v->get_string().size());
    return true;
  }

  // No double in `v` (at any depth) is infinite or NaN.
  static bool finite_numbers(const boost::json::value& v) noexcept {
    switch (v.kind()) {
      case boost::json::kind::double_: return std::isfinite(v.get_double());
      case boost::json::kind::array:
        for (const boost::json::value& e : v.get_array())
          if (!finite_numbers(e)) return false;
        return true;
      case boost::json::kind::object: return finite_numbers(v.get_object());
      default: return true;
    }
  }

  static bool finite_numbers(const boost::json::object& o) noexcept {
    for (const boost::json::key_value_pair& kv : o)
      if (!finite_numbers(kv.value())) return false;
    return true;
  }
};

static_assert(serializer<json_serializer>);
static_assert(envelope_reading_serializer<json_serializer>);

}  // namespace websession
