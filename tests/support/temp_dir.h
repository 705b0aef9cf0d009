// TempDir: a unique directory under $TMPDIR (or /tmp), removed with everything in it when the
// object dies. Paths stay short because ipc:// endpoints live inside them (108-byte limit).

#ifndef HANDOFF_TESTS_SUPPORT_TEMP_DIR_H_
#define HANDOFF_TESTS_SUPPORT_TEMP_DIR_H_

#include <string>

namespace handoff::testing {

class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }
  // Leaves the directory on disk (to inspect a failing test).
  void Keep() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

}  // namespace handoff::testing

#endif  // HANDOFF_TESTS_SUPPORT_TEMP_DIR_H_
