import { describe } from "vitest";
import { fakeHome, liveHome } from "../support/lab-home.js";
import { describeLive } from "../support/layers.js";
import { safetyScenarios } from "./safety-scenarios.js";

describe("crash, lock, journal and confirm on a fake kernel", () => {
  safetyScenarios(fakeHome, { clock: "fake", deathEvery: 1 });
});

describeLive("crash, lock, journal and confirm on a live namespace", () => {
  safetyScenarios(liveHome, { clock: "real", deathEvery: 4 });
});
