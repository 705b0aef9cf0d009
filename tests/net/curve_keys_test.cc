// net/curve_keys.h: key pairs, and the secret key file as operators keep it.

#include "net/curve_keys.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>
#include <vector>

#include "support/temp_dir.h"

namespace handoff::net {
namespace {

TEST_CASE("AKeyPairRoundTripsThroughItsFile") {
  REQUIRE(CurveAvailable());
  testing::TempDir dir;
  auto pair = GenerateCurveKeyPair();
  REQUIRE(pair.ok());
  CHECK(pair->public_key.size() == kCurveKeyTextLength);
  CHECK(ValidateCurveKey(pair->public_key).ok());
  CHECK(KeyPairFromSecret(pair->secret_key)->public_key == pair->public_key);
  const std::string path = dir.Sub("node.key");
  REQUIRE(WriteSecretKeyFile(path, *pair).ok());
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto read = ReadSecretKeyFile(path);
  REQUIRE(read.ok());
  CHECK(read->secret_key == pair->secret_key);
  CHECK(read->public_key == pair->public_key);
  // Never overwritten.
  auto other = GenerateCurveKeyPair();
  CHECK(WriteSecretKeyFile(path, *other).IsAlreadyExists());
  CHECK(ReadSecretKeyFile(path)->secret_key == pair->secret_key);
}

TEST_CASE("KeysAndKeyFilesThatAreWrongAreRefusedSayingWhy") {
  testing::TempDir dir;
  CHECK(ValidateCurveKey("short").message().find("5 characters, not 40") != std::string::npos);
  CHECK(ValidateCurveKey(std::string(40, '~')).message().find("not Z85") != std::string::npos);
  CHECK(ReadSecretKeyFile(dir.Sub("absent.key")).status().IsNotFound());
  auto write = [&](const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir.Sub(name);
    std::ofstream(path) << text;
    REQUIRE(::chmod(path.c_str(), mode) == 0);
    return path;
  };
  auto pair = GenerateCurveKeyPair();
  REQUIRE(pair.ok());
  const std::string loose = write("loose.key", pair->secret_key + "\n", 0640);
  CHECK(ReadSecretKeyFile(loose).status().message().find("chmod 600") != std::string::npos);
  const std::string two = write("two.key", pair->secret_key + "\n" + pair->secret_key + "\n", 0600);
  CHECK(ReadSecretKeyFile(two).status().message().find("exactly one key line") !=
        std::string::npos);
  const std::string garbage = write("garbage.key", "# comment\nnot a key\n", 0600);
  CHECK(ReadSecretKeyFile(garbage).status().IsInvalidArgument());
  const std::string commented =
      write("commented.key", "# mine\n\n  " + pair->secret_key + "  \r\n# end\n", 0600);
  CHECK(ReadSecretKeyFile(commented)->public_key == pair->public_key);
  CHECK(ReadSecretKeyFile(dir.path()).status().message().find("not a regular file") !=
        std::string::npos);
}

TEST_CASE("ProcessesRacingToCreateAKeyEndWithTheSameOne") {
  testing::TempDir dir;
  const std::string path = dir.Sub("data/node.key");  // its directory made too
  std::vector<std::string> seen(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < seen.size(); ++i) {
    threads.emplace_back([&, i] {
      auto pair = LoadOrCreateSecretKeyFile(path);
      if (pair.ok()) seen[i] = pair->public_key;
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& key : seen) CHECK(key == seen[0]);
  CHECK(ReadSecretKeyFile(path)->public_key == seen[0]);
}

}  // namespace
}  // namespace handoff::net
