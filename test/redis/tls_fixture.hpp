// SPDX-License-Identifier: BSL-1.0
// A throwaway PKI for the TLS tests, made with the openssl CLI: ca.crt signs server.crt (for
// 127.0.0.1 and localhost); other-ca.crt signs nothing we use, to check that verification
// really happens. Files live in a temporary directory removed with the object.
#pragma once

#include "server_fixture.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

namespace redis_test {

class test_pki {
 public:
  test_pki() : dir_(make_temp_dir()) {
    const std::string d = dir_.string();
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    run("openssl req -x509" + ec + " -keyout " + d + "/ca.key -out " + d +
        "/ca.crt -days 2 -subj /CN=websession-test-ca");
    run("openssl req -x509" + ec + " -keyout " + d + "/other-ca.key -out " + d +
        "/other-ca.crt -days 2 -subj /CN=websession-other-ca");
    run("openssl req" + ec + " -keyout " + d + "/server.key -out " + d +
        "/server.csr -subj /CN=localhost");
    std::ofstream(dir_ / "ext.cnf") << "subjectAltName=IP:127.0.0.1,DNS:localhost\n";
    run("openssl x509 -req -in " + d + "/server.csr -CA " + d + "/ca.crt -CAkey " + d +
        "/ca.key -CAcreateserial -out " + d + "/server.crt -days 2 -extfile " + d + "/ext.cnf");
  }

  test_pki(const test_pki&) = delete;
  test_pki& operator=(const test_pki&) = delete;

  ~test_pki() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // An absolute path (servers started with --dir elsewhere still find it).
  std::string file(const char* name) const { return (dir_ / name).string(); }

 private:
  void run(const std::string& command) {
    const std::string full = command + " >" + (dir_ / "openssl.log").string() + " 2>&1";
    if (std::system(full.c_str()) != 0) {
      std::ifstream log(dir_ / "openssl.log");
      std::stringstream text;
      text << log.rdbuf();
      throw std::runtime_error("failed: " + command + "\n" + text.str());
    }
  }

  std::filesystem::path dir_;
};

}  // namespace redis_test
