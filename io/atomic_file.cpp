#include "io/atomic_file.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/error.hpp"

namespace kiln::io {

namespace {

// Note [Atomic writes]: the file is written to a temporary beside its target, flushed, renamed over the
// target, and the directory flushed, so a crash leaves the old file or the new one, never half of one.
// A symlink is followed: its target is replaced and the link stays. The target's permissions are kept.
// Temporaries are named "<target>.tmp.<pid>.XXXXXX"; a save removes those of its target whose process is
// gone (killed mid-save), so none pile up.

std::string directory_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// The file a write to `path` replaces: path itself, or what its symlinks lead to.
std::string resolved_target(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return path;
  char* real = ::realpath(path.c_str(), nullptr);
  if (real != nullptr) {
    std::string out(real);
    std::free(real);
    return out;
  }
  // A dangling link: write where it points.
  std::string link(4096, '\0');
  const ssize_t n = ::readlink(path.c_str(), link.data(), link.size() - 1);
  KILN_CHECK(n > 0, "write {}: cannot read the symlink: {}", path, std::strerror(errno));
  link.resize(static_cast<std::size_t>(n));
  return link[0] == '/' ? link : directory_of(path) + "/" + link;
}

void remove_stale_temporaries(const std::string& target) {
  const std::string dir = directory_of(target), base = target.substr(target.rfind('/') + 1) + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.compare(0, base.size(), base) != 0) continue;
    const long pid = std::strtol(name.c_str() + base.size(), nullptr, 10);
    if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) ::unlink((dir + "/" + name).c_str());
  }
  ::closedir(d);
}

// mkstemp's template for a temporary of `target`, named for this process.
std::string temporary_template(const std::string& target) { return fmt::format("{}.tmp.{}.XXXXXX", target, ::getpid()); }

}  // namespace

void write_file_atomic(const std::string& path, std::string_view content) {
  const std::string target = resolved_target(path);
  remove_stale_temporaries(target);
  std::string tmp = temporary_template(target);
  const int fd = ::mkstemp(tmp.data());
  KILN_CHECK(fd >= 0, "write {}: cannot create a temporary file: {}", path, std::strerror(errno));
  std::size_t done = 0;
  while (done < content.size()) {
    const ssize_t n = ::write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error(fmt::format("write {}: {}", path, std::strerror(err)));
    }
    done += static_cast<std::size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  const int sync_err = errno;
  ::close(fd);
  if (!synced) {
    ::unlink(tmp.c_str());
    throw Error(fmt::format("write {}: fsync failed: {}", path, std::strerror(sync_err)));
  }
  struct stat old {};
  ::chmod(tmp.c_str(), ::stat(target.c_str(), &old) == 0 ? (old.st_mode & 07777) : 0644);  // keep the target's mode
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("write {}: cannot rename the temporary file into place: {}", path, std::strerror(err)));
  }
  const int dir = ::open(directory_of(target).c_str(), O_RDONLY | O_DIRECTORY);  // the rename itself, durable
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
}

void check_writable(const std::string& path) {
  struct stat st {};
  KILN_CHECK(!(::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)), "write {}: it is a directory", path);
  std::string tmp = temporary_template(resolved_target(path));  // where write_file_atomic will write
  const int fd = ::mkstemp(tmp.data());
  KILN_CHECK(fd >= 0, "write {}: cannot create a file there: {}", path, std::strerror(errno));
  ::close(fd);
  ::unlink(tmp.c_str());
}

std::string read_file(const std::string& path, std::size_t max_bytes) {
  // A device or a FIFO (/dev/zero, a pipe) would be read forever, or wait forever.
  struct stat st {};
  KILN_CHECK(::stat(path.c_str(), &st) == 0, "read {}: {}", path, std::strerror(errno));
  KILN_CHECK(S_ISREG(st.st_mode), "read {}: not a regular file", path);
  KILN_CHECK(static_cast<std::uint64_t>(st.st_size) <= max_bytes, "read {}: {} bytes, more than the {} it may hold", path,
             static_cast<std::uint64_t>(st.st_size), max_bytes);
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK(in.good(), "read {}: {}", path, std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace kiln::io
