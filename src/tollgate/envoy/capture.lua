-- What the vendor did, read by Envoy from the vendor's own answer: the top-level scalar members named in
-- FIELDS of a JSON object body (the object's id and type, amount, currency, status), into the dynamic
-- metadata namespace NAMESPACE, which the access log writes as one object. Bounded: at most LIMIT bytes of
-- the body are kept and scanned (the members sit near the top of a vendor object), a value longer than
-- MAX_VALUE or outside a plain charset is dropped, and the body streams on unbuffered, so the client waits
-- for nothing. No request header or credential is ever read here.
-- The three upper-case placeholders are filled in by tollgate.envoy.capture.
local NAMESPACE = "__NAMESPACE__"
local LIMIT = __LIMIT__
local FIELDS = {__FIELDS__}
local MAX_VALUE = 128

-- The vendor answers uncompressed for its body to be readable here: each vendor route removes
-- accept-encoding (tollgate.envoy.render). No envoy_on_request: a Lua request handler was seen to keep
-- Envoy from noticing a client that hung up while the vendor worked (the call then ended as a 504).
local function plain(v)
  return #v <= MAX_VALUE and string.find(v, "^[%w%._:%-%+]*$") ~= nil
end

-- The top-level scalar members of the JSON object in `s`, which may be cut short (what was read is kept).
local function members(s)
  local out, n, i, depth, want, key = {}, #s, 1, 0, "key", nil
  while i <= n do
    local c = string.sub(s, i, i)
    if c == '"' then
      local j = i + 1
      while j <= n do
        local d = string.sub(s, j, j)
        if d == "\\" then j = j + 2 elseif d == '"' then break else j = j + 1 end
      end
      if j > n then return out end
      local str = string.sub(s, i + 1, j - 1)
      if depth == 1 then
        if want == "key" then key, want = str, "colon"
        elseif want == "value" then
          if FIELDS[key] and plain(str) then out[key] = str end
          want = "after"
        end
      end
      i = j + 1
    elseif c == "{" or c == "[" then
      if depth == 0 and c ~= "{" then return out end
      if depth == 1 and want == "value" then want = "after" end
      depth = depth + 1
      if depth == 1 then want = "key" end
      i = i + 1
    elseif c == "}" or c == "]" then
      depth = depth - 1
      if depth <= 0 then return out end
      i = i + 1
    elseif depth == 1 and c == ":" and want == "colon" then
      want, i = "value", i + 1
    elseif depth == 1 and c == "," then
      want, i = "key", i + 1
    elseif depth == 1 and want == "value" and not string.find(c, "%s") then
      local j = i
      while j <= n and not string.find(string.sub(s, j, j), "[%s,}%]]") do j = j + 1 end
      if j > n then return out end  -- a number cut short says a wrong amount: drop it
      local lit = string.sub(s, i, j - 1)
      if FIELDS[key] and lit ~= "null" and plain(lit) then out[key] = lit end
      want, i = "after", j
    else
      i = i + 1
    end
  end
  return out
end

function envoy_on_response(handle)
  local headers = handle:headers()
  local status = headers:get(":status") or ""
  local ctype = headers:get("content-type") or ""
  if string.sub(status, 1, 1) ~= "2" or not string.find(ctype, "json", 1, true)
      or headers:get("content-encoding") then
    return
  end
  local parts, size = {}, 0
  for chunk in handle:bodyChunks() do
    local take = math.min(chunk:length(), LIMIT - size)
    if take > 0 then
      parts[#parts + 1] = chunk:getBytes(0, take)
      size = size + take
    end
    if size >= LIMIT then break end
  end
  local meta = handle:streamInfo():dynamicMetadata()
  for k, v in pairs(members(table.concat(parts))) do
    meta:set(NAMESPACE, k, v)
  end
end
