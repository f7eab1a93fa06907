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
#include <utility>

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

// wait, wake and waitAsync run on worker threads too, where worker.terminate() can land while one is
// inside this code: every N-API call then fails, and node-addon-api's wrappers answer a failure by
// throwing, whose own failure is a fatal error of the whole process. So these three use the C API,
// and a call that fails returns undefined (throwing only while JavaScript can still run).
void ThrowIfPossible(napi_env env, const char* message) {
  napi_throw_error(env, nullptr, message);  // fails harmlessly on a terminating thread
}

// The arguments (view, index[, expected, timeout]); false when they cannot be read.
bool FutexArgs(napi_env env, napi_callback_info info, int32_t** addr, napi_value* rest, size_t want) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok || argc < want) return false;
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value buffer;
  size_t offset;
  int64_t index;
  // data points at the view's first element (its byte offset applied)
  if (napi_get_typedarray_info(env, argv[0], &type, &length, &data, &buffer, &offset) != napi_ok) return false;
  if (napi_get_value_int64(env, argv[1], &index) != napi_ok) return false;
  *addr = static_cast<int32_t*>(data) + index;
  for (size_t i = 0; i < want; i++) rest[i] = argv[i];
  return true;
}

// Reads expected and timeout (arguments 2 and 3); a timeout of Infinity or NaN waits forever.
bool WaitArgs(napi_env env, napi_value* argv, int32_t* expected, double* timeout) {
  if (napi_get_value_int32(env, argv[2], expected) != napi_ok) return false;
  if (napi_get_value_double(env, argv[3], timeout) != napi_ok) return false;
  if (!(*timeout < 1e15)) *timeout = -1;
  return true;
}

napi_value Wait(napi_env env, napi_callback_info info) {
  int32_t* addr;
  napi_value argv[4];
  int32_t expected;
  double timeout;
  if (!FutexArgs(env, info, &addr, argv, 4) || !WaitArgs(env, argv, &expected, &timeout)) {
    ThrowIfPossible(env, "wait(view, index, expected, timeout): bad arguments");
    return nullptr;
  }
  napi_value result;
  if (napi_create_string_utf8(env, kResults[FutexWait(addr, expected, timeout)], NAPI_AUTO_LENGTH, &result) != napi_ok)
    return nullptr;
  return result;
}

napi_value Wake(napi_env env, napi_callback_info info) {
  int32_t* addr;
  napi_value argv[4];
  int32_t count;
  if (!FutexArgs(env, info, &addr, argv, 3) || napi_get_value_int32(env, argv[2], &count) != napi_ok) {
    ThrowIfPossible(env, "wake(view, index, count): bad arguments");
    return nullptr;
  }
  long r = syscall(SYS_futex, addr, FUTEX_WAKE, count < 0 ? INT_MAX : count, nullptr, nullptr, 0);
  napi_value result;
  if (napi_create_double(env, r < 0 ? 0 : static_cast<double>(r), &result) != napi_ok) return nullptr;
  return result;
}

// waitAsync runs the futex wait on a libuv pool thread. Waits are capped (the JS side loops), so a
// pool thread is never held for long and pending waits never keep the process alive on their own.
// The view is referenced until the wait ends, so that its memory stays mapped.
struct WaitWork {
  napi_async_work work = nullptr;
  napi_deferred deferred = nullptr;
  napi_ref keep = nullptr;
  int32_t* addr = nullptr;
  int32_t expected = 0;
  double timeout = 0;
  int result = 2;
};

void FreeWait(napi_env env, WaitWork* w) {
  if (w->keep) napi_delete_reference(env, w->keep);
  if (w->work) napi_delete_async_work(env, w->work);
  delete w;
}

void ExecuteWait(napi_env, void* data) {
  auto* w = static_cast<WaitWork*>(data);
  w->result = FutexWait(w->addr, w->expected, w->timeout);
}

void CompleteWait(napi_env env, napi_status, void* data) {
  auto* w = static_cast<WaitWork*>(data);
  napi_value value;
  if (napi_create_string_utf8(env, kResults[w->result], NAPI_AUTO_LENGTH, &value) == napi_ok)
    napi_resolve_deferred(env, w->deferred, value);
  FreeWait(env, w);
}

napi_value WaitAsync(napi_env env, napi_callback_info info) {
  auto* w = new WaitWork();
  napi_value argv[4];
  napi_value promise;
  napi_value name;
  if (!FutexArgs(env, info, &w->addr, argv, 4) || !WaitArgs(env, argv, &w->expected, &w->timeout) ||
      napi_create_reference(env, argv[0], 1, &w->keep) != napi_ok ||
      napi_create_string_utf8(env, "mpts.waitAsync", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, nullptr, name, ExecuteWait, CompleteWait, w, &w->work) != napi_ok ||
      napi_create_promise(env, &w->deferred, &promise) != napi_ok) {
    FreeWait(env, w);
    ThrowIfPossible(env, "waitAsync(view, index, expected, timeout) could not start");
    return nullptr;
  }
  if (napi_queue_async_work(env, w->work) != napi_ok) {
    // the promise is left pending: this thread is ending
    FreeWait(env, w);
    return nullptr;
  }
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
  // the C API's functions (see Wait): a failure while the thread terminates must not be fatal
  const std::pair<const char*, napi_callback> raw[] = {{"wait", Wait}, {"wake", Wake}, {"waitAsync", WaitAsync}};
  for (const auto& [name, callback] : raw) {
    napi_value fn;
    if (napi_create_function(env, name, NAPI_AUTO_LENGTH, callback, nullptr, &fn) == napi_ok) exports.Set(name, fn);
  }
  exports.Set("dieWithParent", Napi::Function::New(env, DieWithParent));
  return exports;
}

}  // namespace

NODE_API_MODULE(mpts_shm, Init)
