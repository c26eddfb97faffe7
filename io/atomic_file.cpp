#include "io/atomic_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/error.hpp"

namespace kiln::io {

void write_file_atomic(const std::string& path, std::string_view content) {
  std::string tmp = path + ".tmp.XXXXXX";
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
  ::chmod(tmp.c_str(), 0644);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw Error(fmt::format("write {}: cannot rename the temporary file into place: {}", path, std::strerror(err)));
  }
}

void check_writable(const std::string& path) {
  struct stat st {};
  KILN_CHECK(!(::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)), "write {}: it is a directory", path);
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  KILN_CHECK(fd >= 0, "write {}: cannot create a file there: {}", path, std::strerror(errno));
  ::close(fd);
  ::unlink(tmp.c_str());
}

std::string read_file(const std::string& path) {
  // A device or a FIFO (/dev/zero, a pipe) would be read forever, or wait forever.
  struct stat st {};
  KILN_CHECK(::stat(path.c_str(), &st) == 0, "read {}: {}", path, std::strerror(errno));
  KILN_CHECK(S_ISREG(st.st_mode), "read {}: not a regular file", path);
  std::ifstream in(path, std::ios::binary);
  KILN_CHECK(in.good(), "read {}: {}", path, std::strerror(errno));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace kiln::io
