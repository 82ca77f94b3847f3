-- The on-sale draw of one line, once: the pre-queue's entries take places at the back of the
-- line in the order given (domain::draw::order, computed by the caller from the seed), and later
-- joins queue behind them. Any number of instances may call it; the first call draws, the others
-- change nothing. A join that slipped into the pre-queue after the caller read it makes the call
-- refuse (-2), and the caller reads the pre-queue again.
-- KEYS: 1 seq, 2 users, 3 wait, 4 pre, 5 drawn, 6 order
-- ARGV: pairs of user, entry, in the drawn order
-- Returns how many places were given, -1 if the line was drawn already, -2 to try again.
if redis.call('EXISTS', KEYS[5]) == 1 then return -1 end
if redis.call('HLEN', KEYS[4]) * 2 ~= #ARGV then return -2 end
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[4], ARGV[i]) ~= ARGV[i + 1] then return -2 end
end
local given = 0
for i = 1, #ARGV, 2 do
  local user = ARGV[i]
  -- Someone with a live place already (a line that ran before the on-sale was set) keeps it.
  if not redis.call('HGET', KEYS[2], user) then
    local s = redis.call('INCR', KEYS[1])
    redis.call('HSET', KEYS[2], user, s)
    redis.call('HSET', KEYS[3], s, user)
    redis.call('RPUSH', KEYS[6], ARGV[i + 1])
    given = given + 1
  end
end
redis.call('DEL', KEYS[4])
redis.call('SET', KEYS[5], redis.call('TIME')[1])
return given
