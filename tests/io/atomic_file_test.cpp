// Note [Atomic writes] (io/atomic_file.cpp): the target's permissions kept, symlinks followed, stale
// temporaries of killed saves removed.

#include <filesystem>
#include <fstream>

#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include "io/atomic_file.hpp"
#include "tensor/error.hpp"

namespace kiln::io {
namespace {

namespace fs = std::filesystem;

fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::path(::testing::TempDir()) / ("kiln_atomic_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

TEST(AtomicFile, KeepsTheTargetsPermissions) {
  const fs::path f = fresh_dir("mode") / "secret.safetensors";
  write_file_atomic(f, "one");
  ::chmod(f.c_str(), 0600);
  write_file_atomic(f, "two");
  struct stat st {};
  ASSERT_EQ(::stat(f.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_file(f), "two");
}

TEST(AtomicFile, ReplacesASymlinksTargetAndKeepsTheLink) {
  const fs::path d = fresh_dir("link");
  write_file_atomic(d / "real", "old");
  fs::create_symlink("real", d / "link");
  write_file_atomic(d / "link", "new");
  EXPECT_TRUE(fs::is_symlink(d / "link"));
  EXPECT_EQ(read_file(d / "real"), "new");
  fs::create_symlink("later", d / "dangling");  // a link to a file not there yet: the file is made
  write_file_atomic(d / "dangling", "made");
  EXPECT_TRUE(fs::is_symlink(d / "dangling"));
  EXPECT_EQ(read_file(d / "later"), "made");
}

TEST(AtomicFile, RemovesTemporariesOfKilledSaves) {
  const fs::path d = fresh_dir("stale");
  const fs::path target = d / "model.safetensors";
  std::ofstream(d / "model.safetensors.tmp.999999999.AbCdEf") << "half a file";  // no such process
  const fs::path live = d / ("model.safetensors.tmp." + std::to_string(::getpid()) + ".XyZ123");
  std::ofstream(live) << "a save under way";
  std::ofstream(d / "other.tmp.999999999.AbCdEf") << "not ours";
  write_file_atomic(target, "whole");
  EXPECT_FALSE(fs::exists(d / "model.safetensors.tmp.999999999.AbCdEf"));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_TRUE(fs::exists(d / "other.tmp.999999999.AbCdEf"));
  std::size_t files = 0;
  for (const auto& e : fs::directory_iterator(d)) files += e.is_regular_file();
  EXPECT_EQ(files, 3u);  // the target, the live save's temporary and the other file: nothing left behind
}

TEST(AtomicFile, RefusesWhatIsNotARegularFile) {
  EXPECT_THROW(read_file("/dev/zero"), Error);
  EXPECT_THROW(read_file(::testing::TempDir()), Error);
  EXPECT_THROW(check_writable(::testing::TempDir()), Error);
  EXPECT_THROW(check_writable("/nonexistent/folder/out.json"), Error);
}

}  // namespace
}  // namespace kiln::io
