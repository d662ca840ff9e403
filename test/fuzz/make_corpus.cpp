// SPDX-License-Identifier: BSL-1.0
// Writes the seed inputs of the cipher and serializer fuzz targets that need real encodings:
// values sealed with the fuzz ring's fixed secrets (cipher.cpp), and serialized sessions.
// Usage: fuzz_make_corpus DIR (writes DIR/cipher/*.seed and DIR/serializer/*.seed). Nonces are
// random, so the sealed seeds differ on every run; the committed ones are one such run.
#include <websession/cipher/aes_gcm.hpp>
#include <websession/serializer/json.hpp>

#include <boost/json/parse.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

using namespace websession;

namespace {

void write(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string serialized(const std::string& user, const std::string& csrf, const std::string& fp,
                       const char* json_data, std::int64_t created_s) {
  session_metadata m;
  m.created = time_point{std::chrono::seconds(created_s)};
  m.last_seen = m.created + std::chrono::seconds(5);
  m.idle_deadline = m.last_seen + std::chrono::minutes(30);
  m.absolute_deadline = m.created + std::chrono::hours(8);
  m.user = user;
  m.csrf_secret = csrf;
  m.fingerprint = fp;
  std::string out;
  if (json_serializer{}.serialize(m, boost::json::parse(json_data).as_object(), out)) {
    std::fprintf(stderr, "serialize failed for %s\n", json_data);
    std::exit(1);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir / "cipher");
  std::filesystem::create_directories(dir / "serializer");

  const std::vector<std::string> sessions = {
      serialized("", "", "", "{}", 1767225600),
      serialized("alice", std::string(32, '\x07'), "", R"({"n":1,"cart":[1,2,3]})", 1767225600),
      serialized("bob@example.com", "0123456789abcdef0123456789abcdef", "fp-43-characters-of-base64url-xxxxxxxxxxxxx",
                 R"({"s":"caf\u00e9 \ud83d\ude00","d":1.5e-7,"neg":-12,"big":18446744073709551615,"t":true,"f":false,"z":null})",
                 0),
      serialized("", "", "", R"({"a":{"b":{"c":[[[[[]]]]]}}})", 7258000000),
      serialized("u", "x", "", R"({"":"","\u0000":"\u001f"})", 1700000000),
  };
  for (std::size_t i = 0; i < sessions.size(); ++i)
    write(dir / "serializer" / ("session" + std::to_string(i) + ".seed"), sessions[i]);

  const std::string s1 = "websession fuzz corpus secret #1 (fixed)";
  const std::string s7 = "websession fuzz corpus secret #7 (fixed)";
  const aes_gcm_cipher seal1(std::vector<aes_gcm_cipher::key_secret>{{1, s1}, {7, s7}});
  const aes_gcm_cipher seal7(std::vector<aes_gcm_cipher::key_secret>{{7, s7}, {1, s1}});
  const std::vector<std::string> aads = {"", "fuzz:{abc}0123456789012345678901234567890123456789012",
                                         "k"};
  const std::vector<std::string> plains = {"", "hello", sessions[1]};
  int n = 0;
  for (const aes_gcm_cipher* c : {&seal1, &seal7}) {
    for (const std::string& aad : aads) {
      for (const std::string& plain : plains) {
        std::string sealed;
        if (c->seal(plain, aad, sealed)) return 1;
        std::string input(1, static_cast<char>(aad.size()));
        input += aad;
        input += sealed;
        write(dir / "cipher" / ("sealed" + std::to_string(n++) + ".seed"), input);
      }
    }
  }
  std::printf("wrote %zu serializer and %d cipher seeds under %s\n", sessions.size(), n,
              dir.c_str());
  return 0;
}
