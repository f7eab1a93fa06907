// Cross-process shared memory and futex wait/wake for multiprocessing-ts (Linux).
//
// V8's Atomics read-modify-write operations are atomic on memory mapped into several processes, but
// Atomics.wait/notify only work inside one process. So this addon maps POSIX shared memory as an
// external ArrayBuffer and exposes the futex system call with shared (non-private) semantics, which
// wakes waiters in any process mapping the same page.
//
// It also ties a child process's life to its parent's (dieWithParent), which the child's event loop
// cannot do while a task keeps it busy.
#include <napi.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <csignal>
#include <fcntl.h>
#include <linux/futex.h>
#include <string>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace {

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& what) {
  Napi::Error error = Napi::Error::New(env, what + ": " + std::strerror(err));
  const char* code = err == EEXIST ? "EEXIST" : err == ENOENT ? "ENOENT" : err == EACCES ? "EACCES"
                   : err == ENOMEM ? "ENOMEM" : err == EINVAL ? "EINVAL" : "EIO";
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, err));
  return error;
}

void Unmap(Napi::Env, void* data, size_t* size) {
  munmap(data, *size);
  delete size;
}

// open(name, size, create) -> ArrayBuffer over the shared mapping.
Napi::Value Open(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  size_t size = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  bool create = info[2].As<Napi::Boolean>().Value();
  int fd = shm_open(name.c_str(), create ? (O_RDWR | O_CREAT | O_EXCL) : O_RDWR, 0600);
  if (fd < 0) {
    ErrnoError(env, errno, "shared memory segment " + name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  if (create) {
    if (ftruncate(fd, static_cast<off_t>(size)) != 0) {
      int err = errno;
      close(fd);
      shm_unlink(name.c_str());
      ErrnoError(env, err, "sizing shared memory segment " + name).ThrowAsJavaScriptException();
      return env.Undefined();
    }
  } else {
    struct stat st;
    if (fstat(fd, &st) == 0 && size == 0) size = static_cast<size_t>(st.st_size);
  }
  void* data = size ? mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : nullptr;
  int err = errno;
  close(fd);
  if (data == MAP_FAILED) {
    ErrnoError(env, err, "mapping shared memory segment " + name).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::ArrayBuffer::New(env, data, size, Unmap, new size_t(size));
}

Napi::Value Unlink(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>().Utf8Value();
  return Napi::Boolean::New(info.Env(), shm_unlink(name.c_str()) == 0);
}

int32_t* Address(const Napi::CallbackInfo& info) {
  Napi::TypedArray array = info[0].As<Napi::TypedArray>();
  size_t index = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
  auto* base = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  return reinterpret_cast<int32_t*>(base) + index;
}

// 0 woken, 1 value differed, 2 timed out. timeoutMs < 0 waits forever. EINTR restarts.
int FutexWait(int32_t* addr, int32_t expected, double timeoutMs) {
  struct timespec deadline;
  clock_gettime(CLOCK_MONOTONIC, &deadline);
  if (timeoutMs >= 0) {
    long long ns = static_cast<long long>(timeoutMs * 1e6);
    deadline.tv_sec += ns / 1000000000LL;
    deadline.tv_nsec += ns % 1000000000LL;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  for (;;) {
    struct timespec rel;
    struct timespec* timeout = nullptr;
    if (timeoutMs >= 0) {
      struct timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      long long left = (deadline.tv_sec - now.tv_sec) * 1000000000LL + (deadline.tv_nsec - now.tv_nsec);
      if (left <= 0) return 2;
      rel.tv_sec = left / 1000000000LL;
      rel.tv_nsec = left % 1000000000LL;
      timeout = &rel;
    }
    long r = syscall(SYS_futex, addr, FUTEX_WAIT, expected, timeout, nullptr, 0);
    if (r == 0) return 0;
    if (errno == EAGAIN) return 1;
    if (errno == ETIMEDOUT) return 2;
    if (errno != EINTR) return 1;
  }
}

const char* kResults[] = {"ok", "not-equal", "timed-out"};

Napi::Value Wait(const Napi::CallbackInfo& info) {
  int32_t* addr = Address(info);
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  double timeout = info[3].As<Napi::Number>().DoubleValue();
  if (!(timeout < 1e15)) timeout = -1;  // Infinity, NaN: forever
  return Napi::String::New(info.Env(), kResults[FutexWait(addr, expected, timeout)]);
}

Napi::Value Wake(const Napi::CallbackInfo& info) {
  int32_t* addr = Address(info);
  int count = info[2].As<Napi::Number>().Int32Value();
  long r = syscall(SYS_futex, addr, FUTEX_WAKE, count < 0 ? INT_MAX : count, nullptr, nullptr, 0);
  return Napi::Number::New(info.Env(), r < 0 ? 0 : static_cast<double>(r));
}

// waitAsync runs the futex wait on a libuv pool thread. Waits are capped (the JS side loops), so a
// pool thread is never held for long and pending waits never keep the process alive on their own.
// A wait can end while its worker thread is being terminated, when JavaScript can no longer run
// there: the promise is then settled through the C API, whose failure is ignored, because the
// C++ wrappers would turn it into a fatal error of the whole process.
class WaitWork : public Napi::AsyncWorker {
 public:
  WaitWork(Napi::Env env, Napi::Object keep, int32_t* addr, int32_t expected, double timeout)
      : Napi::AsyncWorker(env), addr_(addr), expected_(expected), timeout_(timeout) {
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_promise(env, &deferred_, &promise_));
    keep_ = Napi::Persistent(keep);  // the memory stays mapped while we wait on it
  }
  Napi::Value Promise() { return Napi::Value(Env(), promise_); }
  void Execute() override { result_ = FutexWait(addr_, expected_, timeout_); }
  void OnOK() override {
    napi_value value;
    if (napi_create_string_utf8(Env(), kResults[result_], NAPI_AUTO_LENGTH, &value) != napi_ok) return;
    napi_resolve_deferred(Env(), deferred_, value);
  }

 private:
  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  Napi::ObjectReference keep_;
  int32_t* addr_;
  int32_t expected_;
  double timeout_;
  int result_ = 2;
};

Napi::Value WaitAsync(const Napi::CallbackInfo& info) {
  int32_t* addr = Address(info);
  int32_t expected = info[2].As<Napi::Number>().Int32Value();
  double timeout = info[3].As<Napi::Number>().DoubleValue();
  if (!(timeout < 1e15)) timeout = -1;
  auto* work = new WaitWork(info.Env(), info[0].As<Napi::Object>(), addr, expected, timeout);
  Napi::Value promise = work->Promise();
  work->Queue();
  return promise;
}

// dieWithParent(parentPid) -> false when the parent is already gone. Asks the kernel to SIGKILL this
// process when the thread that started it ends (PR_SET_PDEATHSIG), then checks that the parent is
// still parentPid: had it died before the request, this process was already handed to another
// parent, and no signal would ever come.
Napi::Value DieWithParent(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  pid_t parent = static_cast<pid_t>(info[0].As<Napi::Number>().Int32Value());
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
    ErrnoError(env, errno, "prctl(PR_SET_PDEATHSIG)").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Boolean::New(env, getppid() == parent);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("open", Napi::Function::New(env, Open));
  exports.Set("unlink", Napi::Function::New(env, Unlink));
  exports.Set("wait", Napi::Function::New(env, Wait));
  exports.Set("wake", Napi::Function::New(env, Wake));
  exports.Set("waitAsync", Napi::Function::New(env, WaitAsync));
  exports.Set("dieWithParent", Napi::Function::New(env, DieWithParent));
  return exports;
}

}  // namespace

NODE_API_MODULE(mpts_shm, Init)
