// Custom metrics shared by the journey-style scenarios (journey, peak, stress, soak, flash-sale).
// Created at init time, as k6 requires; a metric that never gets a sample does not appear.
import { Counter, Rate, Trend } from 'k6/metrics';

export const journeysStarted = new Counter('journeys_started');
export const journeysCompleted = new Counter('journeys_completed'); // paid
export const journeysFailed = new Counter('journeys_failed'); // tagged reason=<step>
export const journeysAbandoned = new Counter('journeys_abandoned'); // held, then walked away (soak)
export const journeysReleased = new Counter('journeys_released'); // held, then let go of the hold and left the line
export const journeysSoldOut = new Counter('journeys_sold_out'); // admitted, nothing left to buy
export const journeyOk = new Rate('journey_ok'); // 1 = the person got what the scenario expects

export const journeyDuration = new Trend('journey_duration', true); // arrival -> paid
export const timeInQueue = new Trend('journey_time_in_queue', true); // join sent -> ACTIVE seen
export const statusPolls = new Trend('journey_status_polls'); // polls until ACTIVE

// Per step, including retries inside the step (409s, Retry-After sleeps excluded from browse/hold).
export const stepJoin = new Trend('journey_step_join', true);
export const stepBrowse = new Trend('journey_step_browse', true); // dates + seats
export const stepHold = new Trend('journey_step_hold', true); // until a hold succeeds
export const stepPoints = new Trend('journey_step_points', true); // balance (+ charge when short)
export const stepPay = new Trend('journey_step_pay', true);

export const holdConflicts = new Counter('hold_conflicts'); // 409 SEAT_UNAVAILABLE answers (one per refused hold, whatever its size)
export const holdAttempts = new Trend('journey_hold_attempts'); // hold requests per person who tried to hold (winners and losers)
export const pointsCharged = new Counter('journey_points_charged'); // points added because short
export const ticketsSold = new Counter('tickets_sold'); // seats sold: the seats of each 201 payment (first answer per key)
export const paymentsMade = new Counter('payments_made'); // 201 payments (one pays for every seat of its hold)
export const holdGroupSize = new Trend('journey_hold_group_size'); // seats per successful hold
export const seatsReleased = new Counter('seats_released'); // seats let go of by journeys_released
export const lineLeft = new Counter('queue_left'); // 200 answers to POST /queue/leave
